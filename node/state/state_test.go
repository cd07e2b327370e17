package state_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func open(t testing.TB, path string, opts state.Options) *state.DB {
	t.Helper()
	d, err := state.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestGetLeavesValueOnDamage(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), state.File), state.Options{})
	if err := d.PutRaw("settings", "scope", []byte(`"everywhere"`)); err != nil {
		t.Fatal(err)
	}
	scope := node.ScopeAll
	found, err := d.Get("settings", "scope", &scope)
	if !found || !errors.Is(err, state.ErrCorrupt) || scope != node.ScopeAll {
		t.Fatalf("Get of a damaged scope = %v, %v, scope %v", found, err, scope)
	}
	if !strings.Contains(err.Error(), `settings "scope"`) {
		t.Errorf("error %q does not say which value", err)
	}
	// Half a struct decodes before the damage; none of it is kept.
	if err := d.PutRaw("apps", "chat", []byte(`{"id":"chat","description":7}`)); err != nil {
		t.Fatal(err)
	}
	app := publish.RegisteredApp{Launch: "keep"}
	if _, err := d.Get("apps", "chat", &app); !errors.Is(err, state.ErrCorrupt) || app.ID != "" || app.Launch != "keep" {
		t.Fatalf("Get of a damaged app = %v, app %+v", err, app)
	}
	// Fields the value does not hold keep what the caller put there.
	if err := d.Put("apps", "draw", map[string]string{"id": "draw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get("apps", "draw", &app); err != nil || app.ID != "draw" || app.Launch != "keep" {
		t.Fatalf("Get = %v, app %+v", err, app)
	}
	if found, err := d.Get("nothing", "x", &app); found || err != nil {
		t.Fatalf("Get of nothing = %v, %v", found, err)
	}
}

func TestForEachLetsFnWrite(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), state.File), state.Options{})
	for _, k := range []string{"a", "b", "c"} {
		if err := d.Put("b", k, k); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	var raws [][]byte
	err := d.ForEach("b", func(key string, raw []byte) error {
		seen = append(seen, key)
		raws = append(raws, raw)
		// Writing from fn is allowed, and large writes that grow (and
		// remap) the file leave the values already handed out intact.
		return d.Put("b", key+"-big", strings.Repeat("x", 1<<20))
	})
	if err != nil || strings.Join(seen, ",") != "a,b,c" {
		t.Fatalf("ForEach = %v, saw %v", err, seen)
	}
	for i, raw := range raws {
		if string(raw) != `"`+seen[i]+`"` {
			t.Fatalf("value %d is now %.40q", i, raw)
		}
	}
}

// TestOpenDamagedFile: a file that is no database, one cut short (which
// made bbolt die of SIGBUS), and one whose freelist page is damaged (which
// made bbolt panic half-way through Open, leaving the file mapped and
// locked) are ErrCorrupt, and leave the file unlocked; a relaxed database
// moves such a file aside and starts afresh.
func TestOpenDamagedFile(t *testing.T) {
	dir := t.TempDir()
	good := seedDB(t, dir)
	badFreelist := bytes.Clone(good)
	binary.NativeEndian.PutUint16(badFreelist[freelistPage(good)*4096+8:], 0)
	for _, data := range [][]byte{[]byte("not a database"), bytes.Repeat([]byte{0xff}, 16<<10), good[:len(good)/2], badFreelist} {
		path := filepath.Join(dir, state.File)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := state.Open(path, state.Options{}); !errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("Open of a damaged file = %v", err)
		}
		if _, err := state.Open(path, state.Options{}); errors.Is(err, state.ErrLocked) {
			t.Fatal("a failed Open left the file locked")
		}
		// A relaxed database starts afresh beside it.
		d, err := state.Open(path, state.Options{Relaxed: true})
		if err != nil {
			t.Fatalf("relaxed Open of a damaged file = %v", err)
		}
		d.Close()
		aside, _ := filepath.Glob(path + ".damaged-*")
		if len(aside) == 0 {
			t.Fatal("damaged file not moved aside")
		}
		for _, a := range aside {
			os.Remove(a)
		}
		os.Remove(path)
	}
}

// withMetaSums returns data with the checksums of its two bbolt meta pages
// (4096-byte pages) made right.
func withMetaSums(data []byte) []byte {
	const page, header, sum = 4096, 16, 56
	data = bytes.Clone(data)
	for _, off := range []int{0, page} {
		if len(data) < off+header+sum+8 {
			break
		}
		h := fnv.New64a()
		h.Write(data[off+header : off+header+sum])
		binary.NativeEndian.PutUint64(data[off+header+sum:], h.Sum64())
	}
	return data
}

// seedDB makes a small state database and returns its bytes.
func seedDB(t testing.TB, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, "seed.db")
	d, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Put("settings", "scope", node.ScopeInternet)
	d.Put("settings", "endpoint_name", "desk")
	d.Put("apps", "chat", publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}})
	d.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	return good
}

// freelistPage is the page number of the freelist of a bbolt file (4096-
// byte pages), as its newer meta page says.
func freelistPage(data []byte) int {
	const page, header = 4096, 16
	meta := func(off int) (txid, freelist uint64) {
		m := data[off+header:]
		return binary.NativeEndian.Uint64(m[48:]), binary.NativeEndian.Uint64(m[32:])
	}
	tx0, fl0 := meta(0)
	tx1, fl1 := meta(page)
	if tx1 > tx0 {
		return int(fl1)
	}
	return int(fl0)
}

// getTargets are the types the node reads from the state database at
// start, each with a value to start from.
var getTargets = []func() any{
	func() any { s := "default name"; return &s },
	func() any { s := node.ScopeAll; return &s },
	func() any { p := invitations.Anyone; return &p },
	func() any { var t time.Time; return &t },
	func() any {
		return &publish.RegisteredApp{Application: endpoint.Application{ID: "keep"}, Launch: "keep"}
	},
	func() any { var r json.RawMessage; return &r },
	func() any { var s []string; return &s },
}

// FuzzGet stores any bytes as a value and reads them back as each type the
// node keeps: no panic; a value that does not decode is ErrCorrupt and
// leaves the target as it was.
func FuzzGet(f *testing.F) {
	for _, s := range []string{`"desk"`, `"nearme"`, `"contacts"`, `"2026-01-02T03:04:05Z"`,
		`{"id":"chat","description":"Chat","data":"AAE=","launch":"chat","auto_accept":true}`,
		`["a","b"]`, `null`, `7`, `{"id":7}`, `"everywhere"`, ``, `{`, `"\ud800"`, `1e999`} {
		f.Add(uint8(0), []byte(s))
	}
	d := open(f, filepath.Join(f.TempDir(), state.File), state.Options{Relaxed: true})
	f.Fuzz(func(t *testing.T, target uint8, raw []byte) {
		if err := d.PutRaw("fuzz", "v", raw); err != nil {
			t.Skip(err) // bbolt refuses it (too large)
		}
		v := getTargets[int(target)%len(getTargets)]()
		before := reflect.ValueOf(v).Elem().Interface()
		found, err := d.Get("fuzz", "v", v)
		if !found {
			t.Fatalf("Get of a stored value: not found, %v", err)
		}
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("Get = %v", err)
			}
			if after := reflect.ValueOf(v).Elem().Interface(); !reflect.DeepEqual(before, after) {
				t.Fatalf("a damaged value changed the target: %#v to %#v", before, after)
			}
		}
	})
}

// FuzzOpen opens any file as the state database and reads all of it: no
// panic, and a damaged file is ErrCorrupt or another error, never a crash.
// With fixMeta, the meta pages' checksums are made right after the
// fuzzer's changes, so that the damage reaches the other pages (which
// bbolt does not checksum) instead of stopping at the meta pages.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	good := seedDB(f, dir)
	badFreelist := bytes.Clone(good)
	binary.NativeEndian.PutUint16(badFreelist[freelistPage(good)*4096+8:], 0)
	f.Add(false, badFreelist)
	f.Add(false, good)
	f.Add(true, good)
	f.Add(true, good[:len(good)/2]) // cut short: bbolt died of SIGBUS
	f.Add(false, []byte{})
	f.Add(false, []byte("not a database"))
	f.Fuzz(func(t *testing.T, fixMeta bool, data []byte) {
		if fixMeta {
			data = withMetaSums(data)
		}
		file, err := os.CreateTemp(dir, "fuzz*.db")
		if err != nil {
			t.Fatal(err)
		}
		path := file.Name()
		defer os.Remove(path)
		_, err = file.Write(data)
		file.Close()
		if err != nil {
			t.Fatal(err)
		}
		d, err := state.Open(path, state.Options{})
		if err != nil {
			return
		}
		defer d.Close()
		if _, err := d.Walk(); err != nil && !errors.Is(err, state.ErrCorrupt) {
			t.Logf("walk: %v", err)
		}
		var scope node.Scope
		d.Get("settings", "scope", &scope)
		d.ForEach("apps", func(string, []byte) error { return nil })
	})
}
