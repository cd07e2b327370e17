package localapi

import (
	"encoding/json"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// The OpenAPI document (apitype/openapi.json) is made from the route table
// (routes.go) and the contract's Go types and doc comments (package
// apitype): `go test ./node/localapi -run TestOpenAPIUpToDate -update`
// writes it, and the test fails while the file differs from what it
// would write.

// apiDocs holds what the doc comments of package apitype say.
type apiDocs struct {
	types  map[string]string            // type name → doc
	fields map[string]map[string]string // type name → field name → doc
	enums  map[string][]string          // string type name → its constants' values
	codes  []codeDoc                    // the error codes
	events map[string]string            // event type → doc
}

type codeDoc struct{ name, value, doc string }

// readAPIDocs parses package apitype's sources.
func readAPIDocs(t *testing.T) apiDocs {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "apitype", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	files := []*ast.File{}
	for _, f := range pkgs["apitype"].Files {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool {
		return fset.Position(files[i].Pos()).Filename < fset.Position(files[j].Pos()).Filename
	})
	p, err := doc.NewFromFiles(fset, files, "github.com/peercollab/peercollab/node/localapi/apitype", doc.PreserveAST)
	if err != nil {
		t.Fatal(err)
	}
	d := apiDocs{types: map[string]string{}, fields: map[string]map[string]string{}, enums: map[string][]string{}, events: map[string]string{}}
	values := func(vs []*doc.Value, each func(name, value, doc string)) {
		for _, v := range vs {
			for _, spec := range v.Decl.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					val, _ := strconv.Unquote(lit.Value)
					text := vs.Doc.Text()
					if text == "" {
						text = vs.Comment.Text()
					}
					if text == "" && len(v.Decl.Specs) == 1 {
						text = v.Doc
					}
					each(n.Name, val, clean(text))
				}
			}
		}
	}
	for _, typ := range p.Types {
		d.types[typ.Name] = clean(typ.Doc)
		values(typ.Consts, func(_, value, _ string) { d.enums[typ.Name] = append(d.enums[typ.Name], value) })
		ts := typ.Decl.Specs[0].(*ast.TypeSpec)
		if st, ok := ts.Type.(*ast.StructType); ok {
			fd := map[string]string{}
			for _, f := range st.Fields.List {
				text := f.Doc.Text()
				if text == "" {
					text = f.Comment.Text()
				}
				for _, n := range f.Names {
					fd[n.Name] = clean(text)
				}
			}
			d.fields[typ.Name] = fd
		}
	}
	values(p.Consts, func(name, value, text string) {
		switch {
		case strings.HasPrefix(name, "Code"):
			d.codes = append(d.codes, codeDoc{name, value, text})
		case strings.HasPrefix(name, "Event"):
			d.events[value] = strings.TrimPrefix(text, name+": ")
		}
	})
	return d
}

// clean joins a doc comment's lines.
func clean(s string) string { return strings.Join(strings.Fields(s), " ") }

// schemaGen makes JSON Schemas (OpenAPI 3.1) of Go types.
type schemaGen struct {
	docs apiDocs
	defs map[string]any
	// closed are the types that request bodies use: the server refuses
	// fields they do not have.
	closed map[reflect.Type]bool
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	durationType    = reflect.TypeFor[time.Duration]()
	peerIDType      = reflect.TypeFor[peer.ID]()
	multiaddrType   = reflect.TypeFor[ma.Multiaddr]()
	rawType         = reflect.TypeFor[json.RawMessage]()
	bytesType       = reflect.TypeFor[[]byte]()
	fingerprintType = reflect.TypeFor[apitype.Fingerprint]()
	emptyType       = reflect.TypeFor[empty]()
	apitypePkg      = reflect.TypeFor[apitype.Info]().PkgPath()
)

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// schema returns the schema of t, a $ref for the contract's named types.
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType:
		return map[string]any{"type": "integer", "description": "nanoseconds"}
	case rawType:
		return map[string]any{"description": "any JSON value"}
	case bytesType:
		return map[string]any{"type": "string", "contentEncoding": "base64", "description": "bytes, base64-encoded (standard alphabet, with padding)"}
	case peerIDType:
		g.define("PeerID", func() map[string]any {
			return map[string]any{"type": "string", "pattern": "^[1-9A-HJ-NP-Za-km-z]+$", "examples": []string{"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
				"description": "a libp2p peer ID in base58 (the multihash of its public key)"}
		})
		return ref("PeerID")
	case multiaddrType:
		g.define("Multiaddr", func() map[string]any {
			return map[string]any{"type": "string", "pattern": "^/", "examples": []string{"/ip4/192.0.2.7/tcp/4737"}, "description": "a multiaddr"}
		})
		return ref("Multiaddr")
	case fingerprintType:
		g.define("Fingerprint", func() map[string]any {
			return map[string]any{"type": "string", "pattern": "^([0-9A-F]{2}:){31}[0-9A-F]{2}$", "description": g.docs.types["Fingerprint"]}
		})
		return ref("Fingerprint")
	case emptyType:
		return map[string]any{"type": "object", "description": "an empty object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		if t.PkgPath() == apitypePkg && t.Name() != "" {
			name := t.Name()
			g.define(name, func() map[string]any {
				s := map[string]any{"type": "string", "description": g.docs.types[name]}
				if e := g.docs.enums[name]; len(e) > 0 {
					s["enum"] = e
				}
				return s
			})
			return ref(name)
		}
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.PkgPath() != apitypePkg {
			panic("no schema for " + t.String())
		}
		g.define(t.Name(), func() map[string]any { return g.object(t) })
		return ref(t.Name())
	}
	panic("no schema for " + t.String())
}

// define adds a named schema once.
func (g *schemaGen) define(name string, make func() map[string]any) {
	if _, ok := g.defs[name]; ok {
		return
	}
	g.defs[name] = nil // stops recursion
	g.defs[name] = make()
}

// object is the schema of a struct of the contract: a field without
// omitempty or omitzero is always there (required); a list, map or pointer
// without omitempty may be null.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			s := g.schema(f.Type)
			optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
			if k := f.Type.Kind(); !optional && !g.closed[t] && (k == reflect.Slice && f.Type != bytesType || k == reflect.Map || k == reflect.Pointer) {
				s = map[string]any{"oneOf": []any{s, map[string]any{"type": "null"}}}
			}
			if d := g.docs.fields[t.Name()][f.Name]; d != "" {
				if _, isRef := s["$ref"]; isRef {
					s = map[string]any{"allOf": []any{s}, "description": d}
				} else if old, ok := s["description"].(string); ok {
					s["description"] = d + " (" + old + ")"
				} else {
					s["description"] = d
				}
			}
			props[name] = s
			if !optional {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props, "description": g.docs.types[t.Name()]}
	if len(required) > 0 {
		s["required"] = required
	}
	if g.closed[t] {
		s["additionalProperties"] = false
	}
	return s
}

// pathParam matches a {name} of a route's path.
var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// pathParamDocs describes the path parameters.
var pathParamDocs = map[string]string{
	"peer": "a contact's nickname, a peer ID, or a unique prefix of either (people near and peers known by ID too where the endpoint says so)",
	"id":   "the ID, or a unique prefix of it (4 characters at least for invitations and sessions)",
}

// openAPIDocument makes the OpenAPI document of the routes.
func openAPIDocument(t *testing.T, routes []route) []byte {
	t.Helper()
	docs := readAPIDocs(t)
	g := &schemaGen{docs: docs, defs: map[string]any{}, closed: map[reflect.Type]bool{}}
	for _, r := range routes {
		if r.body != nil {
			g.closed[r.body] = true
		}
	}
	errorCodes := []string{}
	codeTable := []map[string]any{}
	status := map[string]int{}
	for _, m := range mappings {
		if _, ok := status[m.code]; !ok {
			status[m.code] = m.status
		}
	}
	for _, c := range docs.codes {
		errorCodes = append(errorCodes, c.value)
		row := map[string]any{"code": c.value, "meaning": c.doc}
		if st, ok := status[c.value]; ok {
			row["status"] = st
		}
		codeTable = append(codeTable, row)
	}
	g.defs["ErrorBody"] = map[string]any{
		"type": "object", "required": []string{"error"}, "description": docs.types["ErrorBody"],
		"properties": map[string]any{"error": map[string]any{
			"type": "object", "required": []string{"code", "message"}, "description": docs.types["Error"],
			"properties": map[string]any{
				"code":    map[string]any{"type": "string", "enum": errorCodes, "description": "a stable code; see x-error-codes at the top of this document"},
				"message": map[string]any{"type": "string", "description": "one sentence for a person, which says what to do"},
			},
		}},
	}
	errorResponse := func(what string) map[string]any {
		return map[string]any{"description": what, "content": map[string]any{"application/json": map[string]any{"schema": ref("ErrorBody")}}}
	}

	// Events: each type with its payload.
	eventTypes := slices.Sorted(func(yield func(string) bool) {
		for typ := range docs.events {
			if !yield(typ) {
				return
			}
		}
	})
	var envelopes []any
	eventTable := []map[string]any{}
	for _, typ := range eventTypes {
		payload := apitype.NewEventPayload(typ)
		if payload == nil {
			t.Fatalf("event type %s has no payload type in apitype.NewEventPayload", typ)
		}
		ps := g.schema(reflect.TypeOf(payload).Elem())
		seq := map[string]any{"type": "integer", "minimum": 1}
		if typ == apitype.EventsLost {
			seq = map[string]any{"const": 0}
		}
		envelopes = append(envelopes, map[string]any{
			"type": "object", "required": []string{"seq", "time", "type", "data"}, "description": docs.events[typ],
			"properties": map[string]any{
				"seq": seq, "time": map[string]any{"type": "string", "format": "date-time"},
				"type": map[string]any{"const": typ}, "data": ps,
			},
		})
		eventTable = append(eventTable, map[string]any{"type": typ, "payload": ps["$ref"], "meaning": docs.events[typ]})
	}
	g.defs["Event"] = map[string]any{"description": docs.types["Event"], "oneOf": envelopes}

	paths := map[string]map[string]any{}
	for _, r := range routes {
		op := map[string]any{
			"operationId": operationID(r),
			"summary":     r.summary,
			"tags":        []string{strings.Split(strings.TrimPrefix(r.path, "/v1/"), "/")[0]},
		}
		if r.description != "" {
			op["description"] = r.description
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}, "description": pathParamDocs[m[1]]})
		}
		for _, q := range r.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "schema": map[string]any{"type": q.typ}, "description": q.description})
		}
		if r.path == "/v1/events" {
			params = append(params, map[string]any{"name": "Last-Event-ID", "in": "header", "schema": map[string]any{"type": "integer", "minimum": 0},
				"description": "resume after the event with this id (seq)"})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(r.body)}}}
		}
		responses := map[string]any{
			"4XX": errorResponse("a mistake of the request (bad_request, a bad value's code, not_found, method_not_allowed), or of the state it meets (contact_not_found, session_ended, ...)"),
			"5XX": errorResponse("a failure of the daemon (internal) or of the network or a peer (unreachable, no_session_key, events_overflow)"),
		}
		switch {
		case r.path == "/v1/events":
			responses["200"] = map[string]any{"description": "a stream of server-sent events; each data line is an Event",
				"content": map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}, "x-item-schema": ref("Event")}}}
		case r.path == "/v1/openapi.json":
			responses["200"] = map[string]any{"description": "this document", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		default:
			responses["200"] = map[string]any{"description": "done", "content": map[string]any{"application/json": map[string]any{"schema": g.schema(r.answer)}}}
		}
		op["responses"] = responses
		if paths[r.path] == nil {
			paths[r.path] = map[string]any{}
		}
		paths[r.path][strings.ToLower(r.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "peercollab local API",
			"version": "1",
			"description": "The local API of a peercollab daemon: JSON over HTTP on the unix socket api.sock in the data directory (mode 0600), which only the user who runs the daemon can open. " +
				"Send requests to any host name over that socket (curl --unix-socket ~/.peercollab/api.sock http://peercollab/v1/id). " +
				"Request bodies are JSON objects; fields a body does not have are refused (bad_request, and the message lists the fields the endpoint takes). " +
				"Byte fields (data) are base64. Times are RFC 3339, durations Go durations (\"5m\", \"200ms\") unless a field says otherwise. " +
				"Every error answer is an ErrorBody whose code is stable (x-error-codes lists them) and whose message is one sentence for a person. " +
				"The event stream GET /v1/events is server-sent events; x-event-types lists the event types and their payloads.",
			"license": map[string]any{"name": "MIT", "identifier": "MIT"},
		},
		"servers":        []any{map[string]any{"url": "http://peercollab", "description": "any host name, over the unix socket HOME/api.sock"}},
		"paths":          paths,
		"components":     map[string]any{"schemas": g.defs},
		"x-error-codes":  codeTable,
		"x-event-types":  eventTable,
		"x-event-buffer": map[string]any{"events": eventHistory, "past-it": "an events.lost event (no id, seq 0) with from, to and reason past-history, then the kept events, then live ones"},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// operationID names a route's operation: its method and path in camel
// case ("getV1ContactsPeerCard").
func operationID(r route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, part := range strings.FieldsFunc(r.path, func(c rune) bool { return c == '/' || c == '-' || c == '.' || c == '{' || c == '}' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// methodOf maps lower-case OpenAPI operation keys back to methods.
var methodOf = map[string]string{"get": http.MethodGet, "post": http.MethodPost, "put": http.MethodPut, "patch": http.MethodPatch, "delete": http.MethodDelete}
