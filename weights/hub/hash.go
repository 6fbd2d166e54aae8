package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// blobHash is the hash a blob's etag names, running over its content.
type blobHash struct {
	hash.Hash
	name   string // "sha256" or "git blob sha1", for messages
	prefix []byte // written before the content: git's object header
}

// newBlobHash returns the hash that a blob named etag, of size bytes, must
// have: sha256 for a 64-hex etag (LFS files), git's blob id for a 40-hex
// one (files stored in git: SHA-1 of "blob <size>\x00" + content), nil for
// any other etag (nothing to check but the size).
func newBlobHash(etag string, size int64) *blobHash {
	var b *blobHash
	switch {
	case len(etag) == 64 && isHex(etag):
		b = &blobHash{Hash: sha256.New(), name: "sha256"}
	case len(etag) == 40 && isHex(etag):
		b = &blobHash{Hash: sha1.New(), name: "git blob sha1", prefix: fmt.Appendf(nil, "blob %d\x00", size)}
	default:
		return nil
	}
	b.reset()
	return b
}

// reset starts over, before the first byte of content.
func (b *blobHash) reset() {
	b.Reset()
	b.Write(b.prefix)
}

// hex is the hash of what was written, as an etag spells it.
func (b *blobHash) hex() string { return hex.EncodeToString(b.Sum(nil)) }
