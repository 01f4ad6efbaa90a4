package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/usersync/usersync/provider"
)

// Provider requests go where a profile says, and whoever may edit a
// profile chooses that address: left alone, a profile (or a redirect the
// provider's server sends, or a cursor) could make usersync fetch its own
// /metrics, a cloud metadata service or anything else on the inside
// network, and show what it answered. So the transport of every provider
// request refuses, when it connects, any address in a loopback, private,
// link-local, shared (CGNAT), multicast or unspecified range, unless an
// allowed network (USERSYNC_OUTBOUND_ALLOW) holds it. The check is on the
// address actually dialled, after DNS, so a name that resolves inward and
// every redirect hop are held to it alike. `usersync dev` allows loopback,
// for the simulators of `usersync idpsim`.

// sharedAddressSpace is RFC 6598's carrier-grade NAT range, which
// netip does not count as private.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// outboundPolicy says which inside addresses provider requests may reach.
type outboundPolicy struct {
	allow    []netip.Prefix
	loopback bool // dev: the simulators listen on loopback
}

// check refuses an address the policy does not let through, as unusable
// data (a profile to fix), not as an outage to retry.
func (p outboundPolicy) check(a netip.Addr) error {
	a = a.Unmap()
	for _, n := range p.allow {
		if n.Contains(a) {
			return nil
		}
	}
	var kind string
	switch {
	case a.IsLoopback():
		if p.loopback {
			return nil
		}
		kind = "loopback"
	case a.IsPrivate(), sharedAddressSpace.Contains(a):
		kind = "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		kind = "link-local"
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast():
		kind = "non-unicast"
	default:
		return nil
	}
	return &provider.InvalidDataError{Reason: fmt.Sprintf("the address %s is in a %s range, which provider requests "+
		"(and their redirects) may not reach; allow it with USERSYNC_OUTBOUND_ALLOW if this server is meant to", a, kind)}
}

// outboundTransport is http.DefaultTransport's settings with the policy
// checked on every connection it makes, except to the proxy the
// environment names (HTTPS_PROXY), which is the operator's choice.
func outboundTransport(p outboundPolicy) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	proxies := proxyAddrs(t)
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	guarded := p.dialer()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxies[addr] {
			return dialer.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
	return t
}

// dialer connects only where the policy lets it, checked on the address
// dialled (after DNS): the HTTP transport's connections, and the raw ones
// of providers that do not speak HTTP (LDAP), which no proxy carries.
func (p outboundPolicy) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("outbound address %q: %w", address, err)
			}
			return p.check(ap.Addr())
		}}
}

// proxyAddrs are the host:port of the proxies t would use.
func proxyAddrs(t *http.Transport) map[string]bool {
	out := map[string]bool{}
	if t.Proxy == nil {
		return out
	}
	for _, target := range []string{"https://example.com/", "http://example.com/"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if u, err := t.Proxy(req); err == nil && u != nil {
			out[hostPort(u)] = true
		}
	}
	return out
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
