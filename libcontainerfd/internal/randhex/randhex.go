// Package randhex makes random names. It calls getrandom(2) itself, not
// crypto/rand: that would link the FIPS module (DRBG, AES, SHA-2 and
// SHA-3, their init functions) into every process, stages included, for a
// few names.
package randhex

import (
	"encoding/hex"
	"fmt"

	"golang.org/x/sys/unix"
)

// String returns n random bytes (n <= 256) in hex.
func String(n int) string {
	b := make([]byte, n)
	// Up to 256 bytes, getrandom fills the buffer in one call or fails.
	for {
		_, err := unix.Getrandom(b, 0)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			panic(fmt.Errorf("getrandom: %w", err)) // as crypto/rand: no safe fallback
		}
	}
	return hex.EncodeToString(b)
}
