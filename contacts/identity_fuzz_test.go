package contacts

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// keyPEM is a PEM block of type typ around der.
func keyPEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// badKeys are identity key files that must be refused, each with a word
// that the error must hold.
func badKeys(t testing.TB) []struct {
	name string
	data []byte
	says string
} {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	good, err := id.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1DER, _ := x509.MarshalECPrivateKey(ec)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, _ := x509.MarshalPKCS8PrivateKey(x)
	block, _ := pem.Decode(good)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: block.Bytes})
	return []struct {
		name string
		data []byte
		says string
	}{
		{"empty", nil, "empty"},
		{"blank", []byte("\n\n  \n"), "empty"},
		{"truncated", good[:len(good)/2], "cut short"},
		{"no end line", bytes.TrimSuffix(good, []byte("-----END PRIVATE KEY-----\n")), "cut short"},
		{"not PEM", []byte("this is not a key"), "not PEM"},
		{"certificate", keyPEM("CERTIFICATE", block.Bytes), `"CERTIFICATE"`},
		{"long type", keyPEM(strings.Repeat("T", 500), block.Bytes), "not \"PRIVATE KEY\""},
		{"encrypted", encrypted, "encrypted"},
		{"corrupt DER", keyPEM(pemPrivateKey, block.Bytes[:len(block.Bytes)-3]), "damaged"},
		{"garbage DER", keyPEM(pemPrivateKey, []byte("garbage")), "damaged"},
		{"ECDSA key", keyPEM(pemPrivateKey, ecDER), "ecdsa"},
		{"X25519 key", keyPEM(pemPrivateKey, xDER), "ecdh"},
		{"SEC 1 key", keyPEM("EC PRIVATE KEY", sec1DER), `"EC PRIVATE KEY"`},
		{"SEC 1 as PKCS#8", keyPEM(pemPrivateKey, sec1DER), "not PKCS#8"},
		{"oversized", append(bytes.Repeat([]byte("#"), MaxKeyFile), good...), "more than"},
	}
}

func TestLoadIdentityRefusesBadKeyFiles(t *testing.T) {
	for _, tc := range badKeys(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, KeyFile), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIdentity(dir)
			if !errors.Is(err, ErrBadKeyFile) || !strings.Contains(err.Error(), tc.says) || len(err.Error()) > 400 {
				t.Fatalf("LoadIdentity = %v; want ErrBadKeyFile saying %q", err, tc.says)
			}
		})
	}
	// A huge file is refused without being read whole.
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	if _, err := LoadIdentity(dir); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("LoadIdentity of a 1 TiB file = %v", err)
	}
}

// FuzzParseIdentityPEM feeds the identity key parser anything: no panic;
// every refusal wraps ErrBadKeyFile; a key it takes writes back to a file
// that yields the same peer.
func FuzzParseIdentityPEM(f *testing.F) {
	id, err := GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := id.MarshalPEM()
	f.Add(good)
	f.Add(append([]byte("comment before\n"), good...))
	f.Add(append(append([]byte{}, good...), good...))
	for _, tc := range badKeys(f) {
		if len(tc.data) <= 4<<10 {
			f.Add(tc.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseIdentityPEM(data)
		if err != nil {
			if got != nil || !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("ParseIdentityPEM = %v, %v", got, err)
			}
			return
		}
		if got.ID() == "" || got.ID() != peerOf(t, got) {
			t.Fatalf("identity %s does not match its key", got.ID())
		}
		again, err := got.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseIdentityPEM(again)
		if err != nil || back.ID() != got.ID() {
			t.Fatalf("written back, the key reads as %v, %v", back, err)
		}
	})
}

func peerOf(t *testing.T, id *Identity) peer.ID {
	t.Helper()
	p, err := peer.IDFromPublicKey(id.PrivKey().GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
