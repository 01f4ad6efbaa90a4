package ldap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// connection is what the source needs of an LDAP connection: a bound
// *goldap.Conn, or recorded answers in tests.
type connection interface {
	Search(*goldap.SearchRequest) (*goldap.SearchResult, error)
	Close() error
}

// idleTTL is how long an unused connection, and the paged search it may
// hold, is kept: longer than the pause between two fetch calls of a run,
// shorter than the idle timeouts directories apply (AD's MaxConnIdleTime
// is 900 s; slapd's idletimeout is off by default).
const idleTTL = 2 * time.Minute

// pool keeps bound connections across Source values of one process: a run
// opens its source again at every fetch call, and the paged search the
// last call left is only valid on the connection it was started on (RFC
// 2696 section 3: the cookie belongs to the server's state for it).
type pool struct {
	mu     sync.Mutex
	idle   map[string][]*pooled // by source key
	paging map[string]*pooled   // by source key + "/" + session id
}

type pooled struct {
	c     connection
	since time.Time
	// cookie is what a paged search's connection answered last.
	cookie []byte
}

var conns = &pool{idle: map[string][]*pooled{}, paging: map[string]*pooled{}}

func (p *pool) takeIdle(key string) connection {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	l := p.idle[key]
	for len(l) > 0 {
		c := l[len(l)-1]
		l = l[:len(l)-1]
		if closed(c.c) {
			continue
		}
		p.idle[key] = l
		return c.c
	}
	delete(p.idle, key)
	return nil
}

// closed is a connection the server ended while it was idle (a restart,
// an idle timeout shorter than idleTTL): go-ldap's reader saw it close.
// Taken again, it would fail the next operation as unreachable.
func closed(c connection) bool {
	cc, ok := c.(interface{ IsClosing() bool })
	if ok && cc.IsClosing() {
		_ = c.Close()
		return true
	}
	return false
}

func (p *pool) putIdle(key string, c connection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A few per source are enough: one run reads one page at a time.
	if len(p.idle[key]) >= 4 {
		_ = c.Close()
		return
	}
	p.idle[key] = append(p.idle[key], &pooled{c: c, since: time.Now()})
	time.AfterFunc(idleTTL+time.Second, p.sweep)
}

// takePaging is the connection of a paged search whose server state is
// at cookie: the cookie it answered last. A connection that has since
// answered with another (a page read and then not committed: the stager's
// read-ahead dropped at the end of a call, a failed write) is closed
// rather than sent an older cookie, which RFC 2696 leaves to the server:
// one that went on from its own state would skip a page of people.
func (p *pool) takePaging(key string, cookie []byte) connection {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
	c, ok := p.paging[key]
	if !ok {
		return nil
	}
	delete(p.paging, key)
	if closed(c.c) {
		return nil
	}
	if !bytes.Equal(c.cookie, cookie) {
		_ = c.c.Close()
		return nil
	}
	return c.c
}

func (p *pool) putPaging(key string, c connection, cookie []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.paging[key]; ok {
		_ = old.c.Close()
	}
	p.paging[key] = &pooled{c: c, since: time.Now(), cookie: cookie}
	time.AfterFunc(idleTTL+time.Second, p.sweep)
}

func (p *pool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked()
}

func (p *pool) sweepLocked() {
	old := time.Now().Add(-idleTTL)
	for k, l := range p.idle {
		kept := l[:0]
		for _, c := range l {
			if c.since.Before(old) {
				_ = c.c.Close()
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			delete(p.idle, k)
		} else {
			p.idle[k] = kept
		}
	}
	for k, c := range p.paging {
		if c.since.Before(old) {
			_ = c.c.Close()
			delete(p.paging, k)
		}
	}
}

// dialer opens a bound connection.
type dialer func(ctx context.Context) (connection, error)

// dial connects, upgrades to TLS (ldaps, or StartTLS: RFC 4511 section
// 4.14) and binds with the service account (simple bind, section 4.2).
func (s *Source) dialLDAP(ctx context.Context) (connection, error) {
	dctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	raw, err := s.dialTCP(dctx, "tcp", s.addr)
	var refused *provider.InvalidDataError
	if errors.As(err, &refused) {
		// The outbound policy's answer: a setting to change, not an outage.
		return nil, fmt.Errorf("ldap: connect to %s: %w", s.host, refused)
	}
	if err != nil {
		return nil, s.netError("connect to", err)
	}
	_ = raw.SetDeadline(time.Now().Add(s.dialTimeout))
	isTLS := false
	if s.ldaps {
		tc := tls.Client(raw, s.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, s.netError("complete TLS with", err)
		}
		raw, isTLS = tc, true
	}
	c := goldap.NewConn(raw, isTLS)
	c.Start()
	c.SetTimeout(s.requestTimeout)
	if s.startTLS {
		if err := c.StartTLS(s.tls); err != nil {
			c.Close()
			var le *goldap.Error
			if errors.As(err, &le) && le.ResultCode != goldap.ErrorNetwork {
				return nil, fmt.Errorf("ldap: %s refused StartTLS (%s): turn startTls off and use ldaps://, or enable TLS on the server: %w",
					s.host, goldap.LDAPResultCodeMap[le.ResultCode], provider.ErrUnreachable)
			}
			return nil, s.netError("complete StartTLS with", err)
		}
	}
	_ = raw.SetDeadline(time.Time{})
	if _, err := c.SimpleBind(&goldap.SimpleBindRequest{Username: s.bindDN, Password: s.bindPassword}); err != nil {
		c.Close()
		return nil, s.bindError(err)
	}
	return c, nil
}

// get is a bound connection: an idle one of this source, or a new one.
func (s *Source) get(ctx context.Context) (connection, error) {
	c, _, err := s.getReused(ctx)
	return c, err
}

// getReused is get, saying whether the connection was idle in the pool.
func (s *Source) getReused(ctx context.Context) (connection, bool, error) {
	if c := conns.takeIdle(s.key); c != nil {
		return c, true, nil
	}
	c, err := s.dial(ctx)
	return c, false, err
}

// put gives back a connection that worked.
func (s *Source) put(c connection) { conns.putIdle(s.key, c) }

// do runs fn on a connection, closing it when ctx ends (go-ldap's calls
// take no context) or fn fails on it.
func (s *Source) do(ctx context.Context, fn func(connection) error) error {
	c, reused, err := s.getReused(ctx)
	if err != nil {
		return err
	}
	err = run(ctx, c, func() error { return fn(c) })
	if err != nil && reused && ctx.Err() == nil && goldap.IsErrorWithCode(err, goldap.ErrorNetwork) {
		// The server dropped the idle connection before go-ldap noticed:
		// the operation never ran, and a new connection may succeed.
		_ = c.Close()
		if c, err = s.dial(ctx); err != nil {
			return err
		}
		err = run(ctx, c, func() error { return fn(c) })
	}
	if err != nil {
		_ = c.Close()
		return err
	}
	s.put(c)
	return nil
}

// run calls fn, closing c when ctx ends first.
func run(ctx context.Context, c connection, fn func() error) error {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	err := fn()
	if !stop() {
		return fmt.Errorf("ldap: %w", ctx.Err())
	}
	return err
}

func newSessionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// netError names what failed before the bind: DNS, TCP or TLS.
func (s *Source) netError(what string, err error) error {
	var (
		dns     *net.DNSError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		rec     tls.RecordHeaderError
		alert   tls.AlertError
	)
	// go-ldap's StartTLS keeps only the text of the handshake's error.
	text := err.Error()
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("ldap: cannot resolve %s (DNS): %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.As(err, &unknown), errors.As(err, &verify) && errors.As(verify.Err, &unknown),
		strings.Contains(text, "certificate signed by unknown authority"):
		return fmt.Errorf("ldap: TLS: %s's certificate is not signed by a trusted CA: put the CA in ldap.caBundle: %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.As(err, &host), strings.Contains(text, "certificate is valid for"):
		return fmt.Errorf("ldap: TLS: %s's certificate is for another name: connect by a name it lists: %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.As(err, &invalid), strings.Contains(text, "certificate has expired"):
		return fmt.Errorf("ldap: TLS: %s's certificate is not valid (expired?): %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.As(err, &rec), strings.Contains(text, "first record does not look like a TLS handshake"):
		return fmt.Errorf("ldap: TLS: %s did not answer in TLS: is the port an ldap:// port (use StartTLS) rather than ldaps://? %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.As(err, &alert), errors.As(err, &verify):
		return fmt.Errorf("ldap: TLS with %s failed: %w: %w", s.host, provider.ErrUnreachable, err)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("ldap: %s %s timed out: %w: %w", what, s.host, provider.ErrUnreachable, err)
	}
	return fmt.Errorf("ldap: cannot %s %s: %w: %w", what, s.host, provider.ErrUnreachable, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Source) bindError(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.LDAPResultInvalidCredentials:
			// AD tells why in the diagnostic ("data 52e": wrong password,
			// "data 533": disabled, "data 532": password expired).
			if strings.Contains(le.Err.Error(), "data 532") || strings.Contains(le.Err.Error(), "data 773") {
				return fmt.Errorf("ldap: bind as %s refused: the password has expired: %w: %w: %w", s.bindDN, provider.ErrCredentialsExpired, provider.ErrAuth, err)
			}
			return fmt.Errorf("ldap: bind as %s refused (invalid credentials): check ldap.bindDn and ldap.bindPassword: %w: %w", s.bindDN, provider.ErrAuth, err)
		case goldap.LDAPResultInappropriateAuthentication, goldap.LDAPResultConfidentialityRequired, goldap.LDAPResultStrongAuthRequired:
			return fmt.Errorf("ldap: bind as %s refused (%s): the server wants TLS or another mechanism: %w: %w", s.bindDN, goldap.LDAPResultCodeMap[le.ResultCode], provider.ErrAuth, err)
		case goldap.ErrorNetwork:
			return s.netError("bind to", err)
		}
	}
	return fmt.Errorf("ldap: bind as %s: %w", s.bindDN, s.opError(err))
}

// opError types the error of an operation after the bind.
func (s *Source) opError(err error) error {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return err
	}
	switch le.ResultCode {
	case goldap.LDAPResultInsufficientAccessRights:
		return fmt.Errorf("%w: %w", provider.ErrPermission, err)
	case goldap.LDAPResultNoSuchObject:
		return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
	case goldap.LDAPResultInvalidCredentials:
		return fmt.Errorf("%w: %w", provider.ErrAuth, err)
	case goldap.ErrorNetwork:
		return fmt.Errorf("%w: %w", provider.ErrUnreachable, err)
	case goldap.LDAPResultFilterError, goldap.LDAPResultInvalidAttributeSyntax, goldap.LDAPResultUndefinedAttributeType,
		goldap.LDAPResultInvalidDNSyntax:
		return fmt.Errorf("%w: %w", provider.ErrInvalidData, err)
	}
	return err
}
