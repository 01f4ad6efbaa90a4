package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// CloudFrontend stands in for a Temporal Cloud frontend before a real
// server (a dev server): it speaks TLS with a certificate made for the
// test, refuses every call without its API key as a bearer token, and
// refuses the operator API's search-attribute calls with PermissionDenied,
// as Cloud does. Everything else is passed on, byte for byte.
type CloudFrontend struct {
	Address    string
	ServerName string // the name its certificate carries
	CAFile     string // the CA that signed it (PEM)
	APIKey     string

	Authorized  atomic.Int64 // calls that carried the key
	Unkeyed     atomic.Int64 // calls refused for a missing or wrong key
	OperatorNos atomic.Int64 // search-attribute calls refused
}

// Operator calls Temporal Cloud answers with PermissionDenied: search
// attributes are managed with tcld or the Cloud UI there.
var cloudRefuses = map[string]bool{
	"/temporal.api.operatorservice.v1.OperatorService/AddSearchAttributes":    true,
	"/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes":   true,
	"/temporal.api.operatorservice.v1.OperatorService/RemoveSearchAttributes": true,
}

// StartCloudFrontend serves a CloudFrontend on loopback in front of the
// frontend at backend, until the test ends.
func StartCloudFrontend(t testing.TB, backend string) *CloudFrontend {
	t.Helper()
	dir := t.TempDir()
	f := &CloudFrontend{ServerName: "frontend.cloud.test", APIKey: "test-api-key-" + randomHex(t)}
	cert, caPEM := serverCert(t, f.ServerName)
	f.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(f.handler(conn)),
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.Address = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		conn.Close()
	})
	return f
}

// handler passes a unary call on (every call of Temporal's API is unary).
func (f *CloudFrontend) handler(conn *grpc.ClientConn) grpc.StreamHandler {
	return func(_ any, ss grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(ss)
		in, _ := metadata.FromIncomingContext(ss.Context())
		if auth := in.Get("authorization"); len(auth) != 1 || auth[0] != "Bearer "+f.APIKey {
			f.Unkeyed.Add(1)
			return status.Error(codes.Unauthenticated, "Request unauthenticated: a valid API key is required")
		}
		f.Authorized.Add(1)
		if cloudRefuses[method] {
			f.OperatorNos.Add(1)
			return status.Error(codes.PermissionDenied, "Request unauthorized.")
		}
		var req []byte
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		out := metadata.MD{}
		for k, v := range in {
			switch {
			case strings.HasPrefix(k, ":"), strings.HasPrefix(k, "grpc-"), k == "authorization",
				k == "content-type", k == "user-agent", k == "te":
			default:
				out[k] = v
			}
		}
		ctx := metadata.NewOutgoingContext(ss.Context(), out)
		var resp []byte
		var header, trailer metadata.MD
		err := conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{}), grpc.Header(&header), grpc.Trailer(&trailer))
		_ = ss.SetHeader(header)
		ss.SetTrailer(trailer)
		if err != nil {
			return err // the backend's status, details included
		}
		return ss.SendMsg(&resp)
	}
}

// rawCodec moves messages as the bytes they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func randomHex(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 16)
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// TestCA is a certificate authority made for one test: it signs server
// and client certificates for TLS and mTLS tests.
type TestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte
}

// NewTestCA makes a CA valid for an hour.
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usersync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &TestCA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serial atomic.Int64

// Issue signs a certificate for name (a DNS name, also valid for
// 127.0.0.1) usable by a server and a client, and returns it and its key
// as PEM.
func (ca *TestCA) Issue(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// serverCert is a certificate for name signed by a new CA, and the CA.
func serverCert(t testing.TB, name string) (tls.Certificate, []byte) {
	t.Helper()
	ca := NewTestCA(t)
	certPEM, keyPEM := ca.Issue(t, name)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.PEM
}
