package runs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/workflows"
)

// usersync's search attributes: every run and schedule tick carries them,
// so that the Temporal UI lists a profile's runs by name and provider.
var attrKeys = []temporal.SearchAttributeKeyKeyword{workflows.ProfileNameKey, workflows.ProviderKey}

// SearchAttributeState is what EnsureSearchAttributes found on a
// namespace.
type SearchAttributeState struct {
	Namespace string
	// Ready: ProfileName and Provider exist as Keyword, runs carry them.
	Ready bool
	// Added lists the attributes this call registered.
	Added []string
	// Missing lists the attributes that are not there and could not be
	// registered: Temporal Cloud has no operator API for them, and a
	// self-hosted frontend may refuse this client the permission.
	Missing []string
	// Err is why they could not be registered (or listed).
	Err error
	// NoOperatorAPI: the frontend refused to list them through the
	// operator API (Temporal Cloud), so it will not add them either.
	NoOperatorAPI bool
}

// Fix says exactly what an operator runs to register the missing
// attributes: tcld or the Cloud UI on Temporal Cloud, the temporal CLI on
// a self-hosted server.
func (s SearchAttributeState) Fix() string {
	if s.Ready || len(s.Missing) == 0 {
		return ""
	}
	var tcld, cli []string
	for _, name := range s.Missing {
		tcld = append(tcld, fmt.Sprintf("--search-attribute %s=Keyword", name))
		cli = append(cli, fmt.Sprintf("--name %s --type Keyword", name))
	}
	return fmt.Sprintf("on Temporal Cloud: tcld namespace search-attributes add --namespace %s %s "+
		"(or the Cloud UI: Namespaces → %s → Custom Search Attributes → add %s, type Keyword); "+
		"on a self-hosted server: temporal operator search-attribute create --namespace %s %s; "+
		"usersync uses them from its next start (or within a minute)",
		s.Namespace, strings.Join(tcld, " "), s.Namespace, strings.Join(s.Missing, " and "), s.Namespace, strings.Join(cli, " "))
}

// CheckSearchAttributes reports which of usersync's search attributes the
// namespace has, changing nothing. It lists them through the operator
// API; a frontend that refuses that (Temporal Cloud without the
// permission) is asked instead with a visibility query per attribute,
// which fails for an attribute the namespace does not know.
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) (SearchAttributeState, error) {
	st := SearchAttributeState{Namespace: namespaceOr(namespace)}
	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: st.Namespace})
	if err != nil {
		if !refused(err) {
			return st, fmt.Errorf("list search attributes of namespace %s: %w", st.Namespace, err)
		}
		st.NoOperatorAPI, st.Err = true, fmt.Errorf("list search attributes of namespace %s: %w", st.Namespace, err)
		for _, key := range attrKeys {
			q := fmt.Sprintf("%s = ''", key.GetName())
			_, err := c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: st.Namespace, Query: q})
			var invalid *serviceerror.InvalidArgument
			switch {
			case errors.As(err, &invalid):
				st.Missing = append(st.Missing, key.GetName())
			case err != nil:
				return st, fmt.Errorf("check search attribute %s of namespace %s: %w", key.GetName(), st.Namespace, err)
			}
		}
		st.Ready = len(st.Missing) == 0
		return st, nil
	}
	for _, key := range attrKeys {
		name := key.GetName()
		have, ok := list.GetCustomAttributes()[name]
		if !ok {
			have, ok = list.GetSystemAttributes()[name]
		}
		switch {
		case !ok:
			st.Missing = append(st.Missing, name)
		case have != enumspb.INDEXED_VALUE_TYPE_KEYWORD:
			return st, fmt.Errorf("search attribute %s of namespace %s is %s, usersync needs Keyword: rename or remove it",
				name, st.Namespace, have)
		}
	}
	st.Ready = len(st.Missing) == 0
	return st, nil
}

// EnsureSearchAttributes registers ProfileName and Provider on the
// namespace when missing, so usersync runs on any Temporal server, not
// only one started with the right flags. Safe to call from every process
// at start: a concurrent registration is not an error. When they are
// missing and cannot be registered (Temporal Cloud), the state says so
// with the fix and the error is nil: usersync works without them, its
// runs listed by workflow id. An error is a namespace usersync cannot use
// as it is (an attribute of another type) or a server that did not answer.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) (SearchAttributeState, error) {
	st, err := CheckSearchAttributes(ctx, c, namespace)
	if err != nil || st.Ready {
		return st, err
	}
	if st.NoOperatorAPI {
		return st, nil
	}
	add := map[string]enumspb.IndexedValueType{}
	for _, name := range st.Missing {
		add[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        st.Namespace,
		SearchAttributes: add,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		st.Err = fmt.Errorf("add search attributes %s to namespace %s: %w", strings.Join(st.Missing, ", "), st.Namespace, err)
		return st, nil
	}
	st.Added, st.Missing, st.Ready = st.Missing, nil, true
	return st, nil
}

// refused is an operator call the frontend does not allow or does not
// have: what Temporal Cloud answers (and a self-hosted frontend whose
// authorizer denies this client).
func refused(err error) bool {
	var denied *serviceerror.PermissionDenied
	var unimplemented *serviceerror.Unimplemented
	return errors.As(err, &denied) || errors.As(err, &unimplemented)
}

func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// SearchAttributes tells the run client whether runs may carry the search
// attributes. Registered later (by tcld, by hand), they are used from the
// next check, at most recheckEvery after the last.
type SearchAttributes struct {
	client    client.Client
	namespace string

	mu      sync.Mutex
	ready   bool
	checked time.Time
}

// recheckEvery is how often a namespace without the attributes is asked
// again, on a run's start; starts are rare, the check is one call.
const recheckEvery = time.Minute

// NewSearchAttributes starts from what EnsureSearchAttributes found.
func NewSearchAttributes(c client.Client, st SearchAttributeState) *SearchAttributes {
	return &SearchAttributes{client: c, namespace: st.Namespace, ready: st.Ready, checked: time.Now()}
}

// Ready reports whether runs carry the search attributes, asking the
// server again when they were missing at the last check.
func (s *SearchAttributes) Ready(ctx context.Context) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready || time.Since(s.checked) < recheckEvery {
		return s.ready
	}
	s.checked = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := CheckSearchAttributes(cctx, s.client, s.namespace); err == nil {
		s.ready = st.Ready
	}
	return s.ready
}

// For is the profile's search attributes for a run or a tick, or none when
// the namespace lacks them (a start carrying them would be refused).
func (s *SearchAttributes) For(ctx context.Context, p *directory.Profile) temporal.SearchAttributes {
	if !s.Ready(ctx) {
		return temporal.SearchAttributes{}
	}
	return temporal.NewSearchAttributes(
		workflows.ProfileNameKey.ValueSet(p.Name),
		workflows.ProviderKey.ValueSet(p.Provider),
	)
}
