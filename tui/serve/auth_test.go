package serve

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// certSigner returns a signer presenting a user certificate for key, signed
// by ca, valid now for the given principals.
func certSigner(t *testing.T, ca, key gossh.Signer, certType uint32, principals ...string) gossh.Signer {
	t.Helper()
	cert := &gossh.Certificate{
		Key:             key.PublicKey(),
		Serial:          42,
		CertType:        certType,
		KeyId:           "alice@laptop",
		ValidPrincipals: principals,
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCertificates: user certificates from a trusted CA (a TrustedCA file
// or a cert-authority line) log in as one of their principals, and only so.
func TestCertificates(t *testing.T) {
	ca, other, user := newSigner(t), newSigner(t), newSigner(t)
	caFile := filepath.Join(t.TempDir(), "ca.pub")
	writeFile(t, caFile, gossh.MarshalAuthorizedKey(ca.PublicKey()), 0o600)
	ts := startServer(t, Options{TrustedCA: caFile})

	good := certSigner(t, ca, user, gossh.UserCert, "alice")
	if c, err := ts.dial("alice", gossh.PublicKeys(good)); err != nil {
		t.Errorf("certificate for alice: %v", err)
	} else {
		c.Close()
	}
	for _, tc := range []struct {
		name, user string
		signer     gossh.Signer
	}{
		{"other principal", "bob", good},
		// x/crypto's CertChecker takes no principals as "any user"; sshd
		// refuses such a certificate, and so must we.
		{"no principals", "alice", certSigner(t, ca, user, gossh.UserCert)},
		{"untrusted CA", "alice", certSigner(t, other, user, gossh.UserCert, "alice")},
		{"host certificate", "alice", certSigner(t, ca, user, gossh.HostCert, "alice")},
		{"bare key of a certificate", "alice", user},
		{"the CA key itself", "alice", ca},
	} {
		if c, err := ts.dial(tc.user, gossh.PublicKeys(tc.signer)); err == nil {
			c.Close()
			t.Errorf("%s: logged in", tc.name)
		}
	}

	// cert-authority in authorized_keys works the same way.
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	writeFile(t, ak, append([]byte("cert-authority,no-port-forwarding "), gossh.MarshalAuthorizedKey(ca.PublicKey())...), 0o600)
	ts2 := startServer(t, Options{AuthorizedKeys: ak})
	if c, err := ts2.dial("alice", gossh.PublicKeys(good)); err != nil {
		t.Errorf("cert-authority line: %v", err)
	} else {
		c.Close()
	}
	if c, err := ts2.dial("alice", gossh.PublicKeys(ca)); err == nil {
		c.Close()
		t.Error("a cert-authority key logged in as a user key")
	}
}

// TestKeysReloaded: editing authorized_keys takes effect without a restart;
// an unreadable file refuses everyone.
func TestKeysReloaded(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	ak := authorizedKeys(t, a)
	ts := startServer(t, Options{AuthorizedKeys: ak})
	try := func(s gossh.Signer) bool {
		c, err := ts.dial("alice", gossh.PublicKeys(s))
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !try(a) || try(b) {
		t.Fatal("initial keys")
	}
	writeFile(t, ak, gossh.MarshalAuthorizedKey(b.PublicKey()), 0o600)
	future := time.Now().Add(2 * time.Second) // a different mtime even on coarse clocks
	if err := os.Chtimes(ak, future, future); err != nil {
		t.Fatal(err)
	}
	if try(a) || !try(b) {
		t.Error("after replacing a with b")
	}
	if err := os.Remove(ak); err != nil {
		t.Fatal(err)
	}
	if try(b) {
		t.Error("logged in with the key file gone")
	}
}

// TestParseKeysSkips: lines that do not parse and keys with options the
// server cannot honour are skipped; the rest load.
func TestParseKeysSkips(t *testing.T) {
	k1, k2, k3 := newSigner(t), newSigner(t), newSigner(t)
	data := []byte("# comment\n\ngarbage line\n")
	data = append(data, gossh.MarshalAuthorizedKey(k1.PublicKey())...)
	data = append(data, "command=\"/bin/sh\" "...)
	data = append(data, gossh.MarshalAuthorizedKey(k2.PublicKey())...)
	data = append(data, "restrict,no-agent-forwarding "...)
	data = append(data, gossh.MarshalAuthorizedKey(k3.PublicKey())...)
	logs := &syncBuffer{}
	set := parseKeys(data, "ak", false, testLogger(logs))
	if len(set.users) != 2 || len(set.cas) != 0 {
		t.Fatalf("users %d, cas %d; log:\n%s", len(set.users), len(set.cas), logs)
	}
	if _, ok := set.users[string(k2.PublicKey().Marshal())]; ok {
		t.Error("a command= key was loaded")
	}
}

// swapKeepingMtime replaces path's content with data of the same size and
// gives it back its mtime, as `cp -p`, `rsync -a` or tar would.
func swapKeepingMtime(t *testing.T, path string, data []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != st.Size() {
		t.Fatalf("new content is %d bytes, old %d: not a same-size swap", len(data), st.Size())
	}
	writeFile(t, path, data, st.Mode().Perm())
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if st2, err := os.Stat(path); err != nil || !st2.ModTime().Equal(st.ModTime()) || st2.Size() != st.Size() {
		t.Fatalf("swap changed size or mtime: %v", err)
	}
}

// TestKeySwapSameSizeSameMtime: a revoked key line replaced by another key
// of the same length, the mtime preserved, takes effect at the next login;
// so does a trusted CA swapped the same way.
func TestKeySwapSameSizeSameMtime(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	ak := authorizedKeys(t, a)
	ts := startServer(t, Options{AuthorizedKeys: ak})
	try := func(s gossh.Signer) bool {
		c, err := ts.dial("alice", gossh.PublicKeys(s))
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !try(a) || try(b) {
		t.Fatal("initial keys")
	}
	old, err := os.ReadFile(ak)
	if err != nil {
		t.Fatal(err)
	}
	lineA, lineB := gossh.MarshalAuthorizedKey(a.PublicKey()), gossh.MarshalAuthorizedKey(b.PublicKey())
	swapKeepingMtime(t, ak, bytes.Replace(old, lineA, lineB, 1))
	if try(a) {
		t.Error("the revoked key still logs in")
	}
	if !try(b) {
		t.Error("the new key does not log in")
	}
	waitLog(t, ts, "keys reloaded")

	ca1, ca2, user := newSigner(t), newSigner(t), newSigner(t)
	caFile := filepath.Join(t.TempDir(), "ca.pub")
	writeFile(t, caFile, gossh.MarshalAuthorizedKey(ca1.PublicKey()), 0o600)
	ts2 := startServer(t, Options{TrustedCA: caFile})
	tryCert := func(ca gossh.Signer) bool {
		c, err := ts2.dial("alice", gossh.PublicKeys(certSigner(t, ca, user, gossh.UserCert, "alice")))
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !tryCert(ca1) || tryCert(ca2) {
		t.Fatal("initial CA")
	}
	swapKeepingMtime(t, caFile, gossh.MarshalAuthorizedKey(ca2.PublicKey()))
	if tryCert(ca1) || !tryCert(ca2) {
		t.Error("the swapped CA file did not take effect")
	}
}

// FuzzParseKeys: any authorized_keys content loads the keys it can and
// skips the rest, without a panic, and logs at most a short line per line
// of input.
func FuzzParseKeys(f *testing.F) {
	k := gossh.MarshalAuthorizedKey(mustSigner(f).PublicKey())
	f.Add(k)
	f.Add(append([]byte("cert-authority,no-pty "), k...))
	f.Add(append([]byte("restrict,command=\"x\" "), k...))
	f.Add([]byte("# comment\n\ngarbage\n\x1b]0;x\x07 ssh-ed25519 AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		logs := &syncBuffer{}
		set := parseKeys(data, "authorized_keys", false, testLogger(logs))
		if len(set.users)+len(set.cas) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d keys from %d lines", len(set.users)+len(set.cas), bytes.Count(data, []byte("\n"))+1)
		}
		if out := logs.String(); strings.ContainsAny(out, "\x1b\x07") {
			t.Fatalf("log holds control characters: %q", out)
		}
	})
}

func mustSigner(f *testing.F) gossh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	return s
}
