package runs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
)

// On a frontend shaped like Temporal Cloud's, which refuses the operator
// API, the search attributes are found missing by a visibility query, not
// added, and the state says what to run; once someone added them (here
// straight on the server behind), the same check finds them.
func TestSearchAttributesWithoutOperatorAPI(t *testing.T) {
	dev := testenv.StartBareDevServer(t)
	cloud := testenv.StartCloudFrontend(t, dev.Address)
	ca, err := os.ReadFile(cloud.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc, err := client.DialContext(ctx, client.Options{
		HostPort: cloud.Address, Namespace: "default", Logger: testenv.QuietLogger(),
		Credentials:       client.NewAPIKeyStaticCredentials(cloud.APIKey),
		ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{RootCAs: pool, ServerName: cloud.ServerName}},
	})
	require.NoError(t, err)
	defer tc.Close()

	st, err := EnsureSearchAttributes(ctx, tc, "default")
	require.NoError(t, err, "missing attributes that cannot be added do not fail the process")
	assert.False(t, st.Ready)
	assert.True(t, st.NoOperatorAPI)
	assert.Equal(t, []string{"ProfileName", "Provider"}, st.Missing)
	assert.Empty(t, st.Added)
	assert.Contains(t, st.Fix(), "tcld namespace search-attributes add --namespace default --search-attribute ProfileName=Keyword --search-attribute Provider=Keyword")
	assert.Contains(t, st.Fix(), "temporal operator search-attribute create --namespace default --name ProfileName --type Keyword --name Provider --type Keyword")
	assert.NotZero(t, cloud.OperatorNos.Load())

	gate := NewSearchAttributes(tc, st)
	p := &directory.Profile{Name: "People", Provider: "csv"}
	assert.Zero(t, gate.For(ctx, p).Size(), "a run must not carry attributes the namespace lacks")

	// What tcld would do.
	_, err = dev.Client.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: "default",
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"ProfileName": enumspb.INDEXED_VALUE_TYPE_KEYWORD, "Provider": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := CheckSearchAttributes(ctx, tc, "default")
		return err == nil && st.Ready
	}, 30*time.Second, 200*time.Millisecond)
	gate.checked = time.Now().Add(-recheckEvery)
	assert.Equal(t, 2, gate.For(ctx, p).Size(), "registered later, they are used from the next check")
}
