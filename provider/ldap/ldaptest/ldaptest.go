// Package ldaptest starts a real OpenLDAP server (Debian's slapd) for
// tests: on free loopback ports, with a slapd.conf, a TLS certificate from
// a CA and an mdb database it generates in a temporary directory, never a
// system service. Its size limit is small (SizeLimit entries) and paged
// searches may go past it, so a test proves that a reader pages.
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Fixed names of the generated server.
const (
	BaseDN     = "dc=example,dc=org"
	AdminDN    = "cn=admin," + BaseDN
	ReaderDN   = "cn=reader," + BaseDN
	UsersDN    = "ou=people," + BaseDN
	GroupsDN   = "ou=groups," + BaseDN
	SizeLimit  = 50 // entries a search may return, and a page at most
	slapdPath  = "/usr/sbin/slapd"
	schemaPath = "/etc/ldap/schema"
)

// Server is a running slapd.
type Server struct {
	URL            string // ldap://127.0.0.1:port (StartTLS offered)
	LDAPSURL       string // ldaps://127.0.0.1:port
	CAPEM          string // the CA that signed the server's certificate
	AdminPassword  string
	ReaderPassword string // the service account's, bound to the size limit
	Dir            string
	sizeLimit      int
	cmd            *exec.Cmd
}

// Options shape a server started with StartInWith.
type Options struct {
	// SizeLimit is the entries a search, and a page of a paged one, may
	// return to the reader; 0 is SizeLimit. A benchmark sets what a
	// production directory allows (AD's MaxPageSize is 1000), so that it
	// does not measure a small test limit.
	SizeLimit int
}

// Path is slapd's, or "" when it is not installed.
func Path() string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat(slapdPath); err == nil {
		return slapdPath
	}
	return ""
}

// Require skips t when slapd is not installed, and fails it under CI
// (CI set), where .ci/run installs it.
func Require(t testing.TB) string {
	t.Helper()
	p := Path()
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("slapd is not installed (apt-get install slapd ldap-utils); CI runs the LDAP tests against it")
		}
		t.Skip("slapd is not installed (apt-get install slapd ldap-utils)")
	}
	return p
}

// Start runs a slapd for the length of t, with the base entries
// (ou=people, ou=groups, the reader) and nothing else.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	s, err := start(bin, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartIn runs a slapd in dir until Stop, for callers without a testing.TB
// (the benchmark).
func StartIn(dir string) (*Server, error) {
	return StartInWith(dir, Options{})
}

// StartInWith is StartIn with options.
func StartInWith(dir string, o Options) (*Server, error) {
	bin := Path()
	if bin == "" {
		return nil, errors.New("ldaptest: slapd is not installed")
	}
	return start(bin, dir, o)
}

func start(bin, dir string, o Options) (*Server, error) {
	s := &Server{Dir: dir, AdminPassword: "admin-secret", ReaderPassword: "reader-secret", sizeLimit: o.SizeLimit}
	if s.sizeLimit <= 0 {
		s.sizeLimit = SizeLimit
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("ldaptest: %w", err)
	}
	if err := s.writeTLS(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ad.schema"), []byte(adSchema), 0o600); err != nil {
		return nil, fmt.Errorf("ldaptest: %w", err)
	}
	// A port found free may be taken before slapd binds it: try again.
	var lastErr error
	for range 5 {
		p1, p2, err := freePorts()
		if err != nil {
			return nil, err
		}
		s.URL = "ldap://127.0.0.1:" + strconv.Itoa(p1)
		s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(p2)
		if lastErr = s.run(bin); lastErr == nil {
			if err := s.seed(); err != nil {
				s.Stop()
				return nil, err
			}
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *Server) conf() string {
	d := s.Dir
	return fmt.Sprintf(`include %[2]s/core.schema
include %[2]s/cosine.schema
include %[2]s/inetorgperson.schema
include %[1]s/ad.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
# A small limit, as a directory's administrator would set, which paged
# searches (RFC 2696) may go past: size.pr caps a page, prtotal the whole.
sizelimit size.soft=%[3]d size.hard=%[3]d size.pr=%[3]d size.prtotal=unlimited
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
suffix "%[4]s"
rootdn "%[5]s"
rootpw %[6]s
directory %[1]s/data
maxsize 268435456
index objectClass,entryUUID,uid,cn,sAMAccountName eq
index member,uniqueMember,modifyTimestamp eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="%[7]s" read by * none
`, d, schemaPath, s.sizeLimit, BaseDN, AdminDN, s.AdminPassword, ReaderDN)
}

func (s *Server) run(bin string) error {
	conf := filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(s.conf()), 0o600); err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	var out bytes.Buffer
	// -d 0 keeps slapd in the foreground, so that it is this process's
	// child and dies with Stop, and still logs nothing but its failures.
	cmd := exec.Command(bin, "-d", "0", "-f", conf, "-h", s.URL+" "+s.LDAPSURL)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ldaptest: start slapd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("ldaptest: slapd exited (%v): %s", err, out.String())
		default:
		}
		if c, err := ldap.DialURL(s.URL); err == nil {
			c.Close()
			s.cmd = cmd
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("ldaptest: slapd did not listen on %s within 15 s: %s", s.URL, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends slapd.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		s.cmd = nil
	}
}

// Restart stops slapd and starts it again on the same ports and data, as
// an administrator's restart does: the clients' connections are dropped.
func (s *Server) Restart() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("ldaptest: slapd is not running")
	}
	if err := s.stopAndWait(); err != nil {
		return err
	}
	bin := Path()
	if bin == "" {
		return errors.New("ldaptest: slapd is not installed")
	}
	return s.run(bin)
}

// stopAndWait stops slapd and waits until it is gone. run's goroutine
// waits for the process: the port closing says it is gone, so that a new
// slapd is not mistaken for the old one, nor the database still open.
func (s *Server) stopAndWait() error {
	s.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := ldap.DialURL(s.URL)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("ldaptest: slapd still listens on %s after it was killed", s.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Load adds the entries of an LDIF file (WriteLDIF) with slapadd while
// slapd is stopped, then starts it again on the same ports: a hundred
// thousand entries load in seconds this way, where adding them one by one
// over LDAP takes minutes. Operational attributes in the file, such as
// modifyTimestamp, are kept as given.
func (s *Server) Load(ldif string) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("ldaptest: slapd is not running")
	}
	bin := Path()
	add, err := exec.LookPath("slapadd")
	if err != nil {
		add = filepath.Join(filepath.Dir(bin), "slapadd")
	}
	if err := s.stopAndWait(); err != nil {
		return err
	}
	// -q skips the consistency checks, which the generated file needs not.
	if out, err := exec.Command(add, "-q", "-f", filepath.Join(s.Dir, "slapd.conf"), "-l", ldif).CombinedOutput(); err != nil {
		return fmt.Errorf("ldaptest: slapadd %s: %w: %s", ldif, err, out)
	}
	return s.run(bin)
}

func freePorts() (int, int, error) {
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, fmt.Errorf("ldaptest: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1], nil
}

// writeTLS makes a CA and a server certificate for 127.0.0.1 and localhost.
func (s *Server) writeTLS() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usersync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("ldaptest: %w", err)
	}
	s.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	files := map[string][]byte{
		"ca.pem":     []byte(s.CAPEM),
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), b, 0o600); err != nil {
			return fmt.Errorf("ldaptest: %w", err)
		}
	}
	return nil
}

// Admin is a connection bound as the root DN, which no limit applies to.
func (s *Server) Admin() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		return nil, fmt.Errorf("ldaptest: %w", err)
	}
	c.SetTimeout(30 * time.Second)
	if err := c.Bind(AdminDN, s.AdminPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("ldaptest: bind as admin: %w", err)
	}
	return c, nil
}

func (s *Server) seed() error {
	return s.Apply(
		Entry{DN: BaseDN, Attrs: map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		Entry{DN: UsersDN, Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		Entry{DN: GroupsDN, Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
		Entry{DN: ReaderDN, Attrs: map[string][]string{"objectClass": {"person", "simpleSecurityObject"}, "cn": {"reader"},
			"sn": {"reader"}, "userPassword": {s.ReaderPassword}}},
	)
}

// Entry is one entry to add.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Apply adds entries as the admin, in order.
func (s *Server) Apply(entries ...Entry) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, e := range entries {
		req := ldap.NewAddRequest(e.DN, nil)
		for k, v := range e.Attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			return fmt.Errorf("ldaptest: add %s: %w", e.DN, err)
		}
	}
	return nil
}

// Modify replaces attributes of dn as the admin; an empty value list
// deletes the attribute.
func (s *Server) Modify(dn string, replace map[string][]string) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	req := ldap.NewModifyRequest(dn, nil)
	for k, v := range replace {
		req.Replace(k, v)
	}
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("ldaptest: modify %s: %w", dn, err)
	}
	return nil
}

// Rename gives dn a new RDN (cn=... or uid=...), in place.
func (s *Server) Rename(dn, newRDN string) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ModifyDN(ldap.NewModifyDNRequest(dn, newRDN, true, "")); err != nil {
		return fmt.Errorf("ldaptest: rename %s: %w", dn, err)
	}
	return nil
}

// Delete removes dn.
func (s *Server) Delete(dn string) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		return fmt.Errorf("ldaptest: delete %s: %w", dn, err)
	}
	return nil
}

// WriteLDIF writes e as an LDIF record (RFC 2849) for Load, its values
// base64-encoded where LDIF does not allow them plain (binary ids,
// leading spaces or colons, non-ASCII), attributes in name order.
func WriteLDIF(w io.Writer, e Entry) error {
	var b strings.Builder
	line := func(name, v string) {
		if safeLDIF(v) {
			b.WriteString(name + ": " + v + "\n")
		} else {
			b.WriteString(name + ":: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n")
		}
	}
	line("dn", e.DN)
	names := make([]string, 0, len(e.Attrs))
	for k := range e.Attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range e.Attrs[k] {
			line(k, v)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// safeLDIF is RFC 2849's SAFE-STRING: ASCII without NUL, CR or LF, not
// starting with a space, a colon or "<", and not ending with a space.
func safeLDIF(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\n' || c == '\r' || c > 127 {
			return false
		}
	}
	return true
}

// GUID is a deterministic 16-byte objectGUID for test entry n, so that a
// test knows the id the provider must render.
func GUID(n int) []byte {
	b := make([]byte, 16)
	copy(b, []byte("usersync-guid"))
	b[13], b[14], b[15] = byte(n>>16), byte(n>>8), byte(n)
	return b
}

// UserDN is the DN of the user with uid (or cn, for the AD shape) name.
func UserDN(rdnAttr, name string) string {
	return rdnAttr + "=" + ldap.EscapeDN(name) + "," + UsersDN
}

// GroupDN is the DN of group cn.
func GroupDN(cn string) string { return "cn=" + ldap.EscapeDN(cn) + "," + GroupsDN }

// Person is a user of the fixtures.
type Person struct {
	Name      string // uid (OpenLDAP) or sAMAccountName and cn (AD)
	Given, Sn string
	Mail      string
	Manager   string // the manager's DN
	Disabled  bool
	GUID      int // objectGUID seed (AD shape)
}

// OpenLDAPUser is p as an inetOrgPerson under ou=people, uid its RDN.
func OpenLDAPUser(p Person) Entry {
	a := map[string][]string{"objectClass": {"inetOrgPerson", "usersyncLockable"}, "uid": {p.Name},
		"cn": {strings.TrimSpace(p.Given + " " + p.Sn)}, "sn": {p.Sn}}
	if p.Given != "" {
		a["givenName"] = []string{p.Given}
	}
	if p.Mail != "" {
		a["mail"] = []string{p.Mail}
	}
	if p.Manager != "" {
		a["manager"] = []string{p.Manager}
	}
	if p.Disabled {
		a["nsAccountLock"] = []string{"TRUE"}
	}
	return Entry{DN: UserDN("uid", p.Name), Attrs: a}
}

// ADUser is p shaped as Active Directory holds it: class user, cn its
// RDN, a binary objectGUID, userAccountControl 512 (a normal account) or
// 514 (bit 2, disabled).
func ADUser(p Person) Entry {
	uac := "512"
	if p.Disabled {
		uac = "514"
	}
	a := map[string][]string{"objectClass": {"user"}, "cn": {p.Name}, "sn": {p.Sn}, "sAMAccountName": {p.Name},
		"userPrincipalName": {p.Name + "@example.org"}, "objectGUID": {string(GUID(p.GUID))},
		"userAccountControl": {uac}}
	if p.Given != "" {
		a["givenName"] = []string{p.Given}
	}
	if p.Mail != "" {
		a["mail"] = []string{p.Mail}
	}
	if p.Manager != "" {
		a["manager"] = []string{p.Manager}
	}
	return Entry{DN: UserDN("cn", p.Name), Attrs: a}
}

// OpenLDAPGroup is a groupOfNames; the schema wants one member at least.
func OpenLDAPGroup(cn string, members ...string) Entry {
	return Entry{DN: GroupDN(cn), Attrs: map[string][]string{"objectClass": {"groupOfNames"}, "cn": {cn}, "member": members}}
}

// ADGroup is a group of class group with a binary objectGUID.
func ADGroup(cn string, guid int, members ...string) Entry {
	a := map[string][]string{"objectClass": {"group"}, "cn": {cn}, "sAMAccountName": {cn}, "objectGUID": {string(GUID(guid))}}
	if len(members) > 0 {
		a["member"] = members
	}
	return Entry{DN: GroupDN(cn), Attrs: a}
}
