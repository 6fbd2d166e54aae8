package serve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights"
)

// Authentication is public key only. Keys come from an authorized_keys file
// (OpenSSH format; a line with the cert-authority option names a CA) and
// from an optional file of trusted user CA keys, whose certificates are
// accepted when one of their principals is the SSH user name. The files are
// read again at every authentication, like OpenSSH does, and parsed again
// when their content changes (by sha256, not size or mtime: `cp -p`,
// `rsync -a`, tar and Nix keep the mtime, and a swapped key line has the
// same length), so revoking a key needs no restart; when a file cannot be
// read, its keys stop working (fail closed).
//
// Options that would restrict a key (from=, command=, no-pty, expiry-time,
// …) are not implemented, so such a key is skipped with a warning rather
// than accepted with fewer restrictions than its owner wrote.

// harmlessOptions are authorized_keys options that only forbid what this
// server never offers (forwarding, user rc files).
var harmlessOptions = map[string]bool{
	"restrict": true, "no-port-forwarding": true, "no-agent-forwarding": true,
	"no-x11-forwarding": true, "no-user-rc": true, "cert-authority": true,
}

// keySet is the parsed content of the key files.
type keySet struct {
	users map[string]gossh.PublicKey // marshalled key -> key
	cas   map[string]gossh.PublicKey // marshalled CA key -> key
}

// maxKeyFile bounds a key file: some 10,000 keys.
const maxKeyFile = 4 << 20

// keyFile is one file of keys, parsed again when its content changes.
type keyFile struct {
	path string
	ca   bool // every key is a CA key (TrustedUserCAKeys format)

	sum    [sha256.Size]byte // of the content set was parsed from
	loaded bool              // set holds the keys of content sum
	set    keySet
	err    error // the last read's error, if any
}

// authorizer decides public-key logins.
type authorizer struct {
	mu    sync.Mutex
	files []*keyFile
	log   *slog.Logger
}

// newAuthorizer reads the key files. It fails when a named file cannot be
// read or when, together, they hold no usable key: a server that accepts
// nobody is a mistake, and one that accepts everybody must never happen.
func newAuthorizer(authorizedKeys, trustedCA string, log *slog.Logger) (*authorizer, error) {
	a := &authorizer{log: log}
	if authorizedKeys != "" {
		a.files = append(a.files, &keyFile{path: authorizedKeys})
	}
	if trustedCA != "" {
		a.files = append(a.files, &keyFile{path: trustedCA, ca: true})
	}
	if len(a.files) == 0 {
		return nil, errors.New("serve: no authorized keys: give an authorized_keys file (or a trusted user CA file); refusing to serve without authentication")
	}
	n := 0
	for _, f := range a.files {
		f.refresh(log, false) // New returns the error: not logged twice
		if f.err != nil {
			return nil, f.err
		}
		n += len(f.set.users) + len(f.set.cas)
		log.Info("keys loaded", "path", f.path, "keys", len(f.set.users), "cas", len(f.set.cas))
	}
	if n == 0 {
		names := make([]string, len(a.files))
		for i, f := range a.files {
			names[i] = f.path
		}
		return nil, fmt.Errorf("serve: %s: no usable public key; add one (e.g. the line of ~/.ssh/id_ed25519.pub) — refusing to serve without authentication", strings.Join(names, ", "))
	}
	return a, nil
}

// allow reports whether key may log in as user. It returns a short reason
// for the log when it may not.
func (a *authorizer) allow(user string, key gossh.PublicKey) (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.files {
		f.refresh(a.log, true)
	}
	if cert, ok := key.(*gossh.Certificate); ok {
		return a.allowCert(user, cert)
	}
	k := string(key.Marshal())
	for _, f := range a.files {
		if _, ok := f.set.users[k]; ok {
			return true, ""
		}
	}
	return false, "unknown key"
}

// allowCert checks a user certificate against the trusted CAs.
func (a *authorizer) allowCert(user string, cert *gossh.Certificate) (bool, string) {
	if cert.CertType != gossh.UserCert {
		return false, "not a user certificate"
	}
	if len(cert.ValidPrincipals) == 0 {
		// CertChecker would take this as valid for every user; sshd
		// refuses it ("certificate lacks principal list").
		return false, "certificate has no principals"
	}
	checker := gossh.CertChecker{
		IsUserAuthority: func(auth gossh.PublicKey) bool {
			k := string(auth.Marshal())
			for _, f := range a.files {
				if _, ok := f.set.cas[k]; ok {
					return true
				}
			}
			return false
		},
	}
	if !checker.IsUserAuthority(cert.SignatureKey) {
		return false, "certificate from an untrusted CA"
	}
	if err := checker.CheckCert(user, cert); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// refresh reads the file and parses it again if its content changed since
// the last parse. A file that cannot be read (or is not a regular file, or
// is larger than maxKeyFile), or is writable by others, holds no keys;
// logErrors says whether to log why, which is done once per distinct
// failure rather than at every login attempt.
func (f *keyFile) refresh(log *slog.Logger, logErrors bool) {
	data, err := readKeyFile(f.path)
	if err != nil {
		if logErrors && (f.err == nil || f.err.Error() != err.Error()) {
			log.Error("key file unusable; its keys are refused", "path", f.path, "err", err)
		}
		f.set, f.err, f.loaded = keySet{}, err, false
		return
	}
	sum := sha256.Sum256(data)
	if f.loaded && sum == f.sum {
		return
	}
	f.set = parseKeys(data, f.path, f.ca, log)
	f.sum, f.loaded, f.err = sum, true, nil
	if logErrors { // a reload
		log.Info("keys reloaded", "path", f.path, "keys", len(f.set.users), "cas", len(f.set.cas))
	}
}

// readKeyFile reads a key file that only its owner may write.
func readKeyFile(path string) ([]byte, error) {
	fd, st, err := weights.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("serve: key file %w", err)
	}
	defer fd.Close()
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("serve: %s is writable by group or others (mode %04o): chmod go-w it", path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(fd, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("serve: key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("serve: key file %s: larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}

// parseKeys reads authorized_keys lines, skipping (with a warning) lines
// that do not parse and keys with options this server cannot honour.
func parseKeys(data []byte, path string, allCA bool, log *slog.Logger) keySet {
	set := keySet{users: map[string]gossh.PublicKey{}, cas: map[string]gossh.PublicKey{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, opts, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			log.Warn("key file: skipping a line that does not parse", "path", path, "line", n, "err", err)
			continue
		}
		ca := allCA
		skip := ""
		for _, o := range opts {
			name, _, _ := strings.Cut(strings.ToLower(o), "=")
			switch {
			case name == "cert-authority":
				ca = true
			case !harmlessOptions[name]:
				skip = name
			}
		}
		if skip != "" {
			log.Warn("key file: skipping a key with an option this server does not implement", "path", path, "line", n, "option", skip)
			continue
		}
		if _, isCert := key.(*gossh.Certificate); isCert {
			log.Warn("key file: skipping a certificate (list the CA key instead)", "path", path, "line", n)
			continue
		}
		if ca {
			set.cas[string(key.Marshal())] = key
		} else {
			set.users[string(key.Marshal())] = key
		}
	}
	return set
}

// keyAttrs describes the key a client offered, for the log: never the key
// itself, only its type and fingerprint (and a certificate's id, serial and
// CA).
func keyAttrs(key ssh.PublicKey) []any {
	if key == nil {
		return nil
	}
	if cert, ok := key.(*gossh.Certificate); ok {
		return []any{
			"key", gossh.FingerprintSHA256(cert.Key), "key_type", cert.Key.Type(),
			"cert_id", display.Safe(cert.KeyId), "cert_serial", cert.Serial, "ca", gossh.FingerprintSHA256(cert.SignatureKey),
		}
	}
	return []any{"key", gossh.FingerprintSHA256(key), "key_type", key.Type()}
}
