package serve

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/weights"
)

// maxHostKeyFile bounds the host key file (an ed25519 key is 400 bytes,
// an RSA one a few KB).
const maxHostKeyFile = 64 << 10

// loadHostKey reads the server's private host key, creating an ed25519 key
// (mode 0600, its directory 0700) when the file does not exist, so clients
// see the same host key after every restart. A key readable by others is
// refused, as sshd does.
func loadHostKey(path string) (gossh.Signer, error) {
	data, err := weights.ReadFile(path, maxHostKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = createHostKey(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("serve: host key %s is accessible by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("serve: host key %s: %w", path, err)
	}
	return signer, nil
}

// createHostKey writes a new ed25519 private key in OpenSSH format. The file
// is created exclusively, so two servers starting at once cannot both write.
func createHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "logitlens host key")
	if err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return weights.ReadFile(path, maxHostKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	return data, nil
}
