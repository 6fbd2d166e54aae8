package export

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileAtomic puts data at path through a temporary file in the same
// directory and a rename, so readers see the old file or the whole new one
// and a failure leaves nothing behind. A symlink is followed (the link stays,
// its target is replaced); a path that exists and is not a regular file (a
// terminal, /dev/stdout, a pipe from process substitution) is written in
// place, since it cannot be replaced and holds no file to protect.
func writeFileAtomic(path string, data []byte) error {
	target, err := followLinks(path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	mode := fs.FileMode(0)
	if st, err := os.Stat(target); err == nil {
		if !st.Mode().IsRegular() {
			return writeInPlace(target, data)
		}
		mode = st.Mode().Perm()
	}
	tmp, err := createTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil && mode != 0 {
		err = tmp.Chmod(mode) // replacing a file keeps its permissions
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr // a write can fail only at Close (a full disk, NFS)
	}
	if err == nil {
		err = os.Rename(name, target)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("export: writing %s: %w", path, err)
	}
	return nil
}

// followLinks returns the file a chain of symlinks at path ends at, which
// need not exist yet (a link to a file still to be written).
func followLinks(path string) (string, error) {
	for range 40 { // as many links as Linux follows
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// createTemp creates a new file named prefix + random hex in dir. Unlike
// os.CreateTemp it asks for mode 0666, so the new file gets the permissions
// the user's umask gives every file they create (os.CreateTemp's are 0600).
func createTemp(dir, prefix string) (*os.File, error) {
	for range 10 {
		var r [6]byte
		rand.Read(r[:])
		f, err := os.OpenFile(filepath.Join(dir, prefix+hex.EncodeToString(r[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
}

// writeInPlace writes data to an existing file that is not a regular file.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: writing %s: %w", path, err)
	}
	return nil
}
