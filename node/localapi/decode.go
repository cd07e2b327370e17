package localapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// readBody reads the whole request body, at most maxBody bytes, within the
// server's read deadline (bodyTimeout from the request's first byte). Once
// the body is in, net/http clears that deadline for its background read
// (which watches for the client going away), so a long call such as ping
// is not cut short by it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		var ne interface{ Timeout() bool }
		switch {
		case errors.As(err, &tooBig):
			return nil, badRequest("request body is larger than %d bytes", maxBody)
		case errors.As(err, &ne) && ne.Timeout():
			return nil, &apitype.Error{Status: http.StatusRequestTimeout, Code: apitype.CodeRequestTimeout,
				Message: sentence.Make(fmt.Sprintf("the request body did not arrive within %v", bodyTimeout), "")}
		}
		return nil, badRequest("request body could not be read: %v", err)
	}
	return data, nil
}

// decode decodes the JSON body of r (already read by handle) into v.
func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("request body could not be read: %v", err)
	}
	return decodeJSON(data, v)
}

// decodeJSON decodes one JSON object into v, refusing unknown fields and
// anything after the object. Every error is an *apitype.Error with a 4xx status:
// bad_request for a body that is not the JSON the endpoint takes, or the
// code of the value that is wrong (bad_status, bad_scope, ...). Messages
// repeat at most a short prefix of what the client sent.
func decodeJSON(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("request body is empty")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		e := jsonError(err)
		if strings.Contains(e.Message, "unknown field") {
			// Say what the endpoint takes (the OpenAPI document has it too).
			e.Message = strings.TrimSuffix(e.Message, ".") + "; it takes " + strings.Join(jsonFields(reflect.TypeOf(v)), ", ") + "."
		}
		return e
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return badRequest("request body has data after its JSON object")
	}
	return nil
}

// jsonFields lists the JSON names of the fields of the struct t (or *t)
// as encoding/json decodes them: embedded structs' fields included, an
// outer field hiding an embedded one of the same name.
func jsonFields(t reflect.Type) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return
		}
		var embedded []reflect.Type
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || (!f.IsExported() && !f.Anonymous):
			case f.Anonymous && name == "":
				embedded = append(embedded, f.Type)
			default:
				if name == "" {
					name = f.Name
				}
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
		for _, e := range embedded {
			walk(e)
		}
	}
	walk(t)
	return out
}

// jsonError turns an error of encoding/json into an *apitype.Error.
func jsonError(err error) *apitype.Error {
	var (
		apiErr   *apitype.Error
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		base64Er base64.CorruptInputError
	)
	switch {
	case errors.As(err, &apiErr): // from a wire type's UnmarshalText
		return apiErr
	case errors.As(err, &syntax):
		return badRequest("request body is not valid JSON (at byte %d): %s", syntax.Offset, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON: it ends too early")
	case errors.As(err, &typ):
		if code, ok := valueCodes[deref(typ.Type)]; ok {
			return badValue(code, "%s", typeMessage(typ))
		}
		return badRequest("%s", typeMessage(typ))
	case errors.As(err, &base64Er):
		return badRequest("a data field is not valid base64 (at byte %d)", int64(base64Er))
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field `); ok {
		return badRequest("request body has an unknown field %s", sentence.ShortenQuoted(name))
	}
	if e := toError(err); e.Status < http.StatusInternalServerError {
		return e // a sentinel with a code of its own, such as endpoint.ErrBadStatus
	}
	return badRequest("request body is not valid: %v", err)
}

// typeMessage says which field has a value of the wrong JSON type.
func typeMessage(e *json.UnmarshalTypeError) string {
	field := e.Field
	if field == "" {
		return fmt.Sprintf("request body must be %s, not %s", jsonKind(e.Type), jsonValue(e.Value))
	}
	if strings.HasPrefix(e.Value, "number") && isNumber(e.Type) {
		return fmt.Sprintf("field %s is out of range", sentence.Quote(field))
	}
	return fmt.Sprintf("field %s must be %s, not %s", sentence.Quote(field), jsonKind(e.Type), jsonValue(e.Value))
}

// jsonValue names the JSON type of a value as encoding/json describes it
// ("number 1e999" becomes "a number").
func jsonValue(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	switch kind {
	case "number", "string":
		return "a " + kind
	case "bool":
		return "true or false"
	case "null":
		return "null"
	case "array":
		return "a list"
	case "object":
		return "an object"
	}
	return sentence.Quote(kind)
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

// jsonKind names the JSON type that a Go type takes.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch {
	case isNumber(t):
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "base64 text"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "a list"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "an object"
	case t.Kind() == reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value"
}

// deref is the type that t points to, through every pointer.
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isNumber(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// valueCodes gives the code of a bad value by the type that refused it,
// for values of the wrong JSON type ({"status": 3} or {"policy": null}).
var valueCodes = map[reflect.Type]string{
	reflect.TypeFor[wirePermission](): apitype.CodeBadPermission,
	reflect.TypeFor[wireScope]():      apitype.CodeBadScope,
	reflect.TypeFor[wirePolicy]():     apitype.CodeBadPolicy,
	reflect.TypeFor[wireStatus]():     apitype.CodeBadStatus,
}

// Wire types: a request field whose value is one of a few names is decoded
// through one of these, which checks the name and keeps it in its
// canonical form, so that a bad value gets its own code instead of
// bad_request.

// wirePermission decodes an apitype.WatcherPermission.
type wirePermission apitype.WatcherPermission

func (p *wirePermission) UnmarshalText(b []byte) error {
	v := apitype.WatcherPermission(b)
	if _, err := permissionArg(&v); err != nil {
		return err
	}
	*p = wirePermission(v)
	return nil
}

// wireScope decodes an apitype.Scope.
type wireScope apitype.Scope

func (s *wireScope) UnmarshalText(b []byte) error {
	v, err := scopeArg(apitype.Scope(b))
	if err != nil {
		return err
	}
	*s = wireScope(scopeView(v))
	return nil
}

// wirePolicy decodes an apitype.Policy.
type wirePolicy apitype.Policy

func (p *wirePolicy) UnmarshalText(b []byte) error {
	v, err := policyArg(apitype.Policy(b))
	if err != nil {
		return err
	}
	*p = wirePolicy(v)
	return nil
}

// wireStatus decodes an apitype.PresenceStatus.
type wireStatus apitype.PresenceStatus

func (s *wireStatus) UnmarshalText(b []byte) error {
	v, err := endpoint.ParseStatus(string(b))
	if err != nil {
		// Not endpoint's message, which lists offline: setting it is
		// refused while signed in (signing out is how to appear offline).
		return badValue(apitype.CodeBadStatus, "unknown presence status %s: use online, away, busy, be-right-back, idle, on-the-phone or out-to-lunch, or sign out to appear offline", sentence.Quote(string(b)))
	}
	*s = wireStatus(v.String())
	return nil
}

// The request bodies that hold such fields, as the server decodes them.
// The outer field hides the embedded one of the same JSON name.

type addContactWire struct {
	apitype.AddContactRequest
	WatcherPermission *wirePermission `json:"watcher_permission,omitempty"`
}

func (w addContactWire) request() apitype.AddContactRequest {
	r := w.AddContactRequest
	r.WatcherPermission = (*apitype.WatcherPermission)(w.WatcherPermission)
	return r
}

type updateContactWire struct {
	apitype.UpdateContactRequest
	WatcherPermission *wirePermission `json:"watcher_permission,omitempty"`
}

func (w updateContactWire) request() apitype.UpdateContactRequest {
	r := w.UpdateContactRequest
	r.WatcherPermission = (*apitype.WatcherPermission)(w.WatcherPermission)
	return r
}

type addNearWire struct {
	apitype.AddNearRequest
	WatcherPermission *wirePermission `json:"watcher_permission,omitempty"`
}

func (w addNearWire) request() apitype.AddNearRequest {
	r := w.AddNearRequest
	r.WatcherPermission = (*apitype.WatcherPermission)(w.WatcherPermission)
	return r
}

type scopeWire struct {
	Scope *wireScope `json:"scope"`
}

func (w scopeWire) request() (apitype.ScopeRequest, error) {
	if w.Scope == nil {
		return apitype.ScopeRequest{}, badValue(apitype.CodeBadScope, "name a scope: nearme, internet or all")
	}
	return apitype.ScopeRequest{Scope: apitype.Scope(*w.Scope)}, nil
}

type policyWire struct {
	Policy *wirePolicy `json:"policy"`
}

func (w policyWire) request() (apitype.PolicyBody, error) {
	if w.Policy == nil {
		return apitype.PolicyBody{}, badValue(apitype.CodeBadPolicy, "name a policy: anyone, contacts or nobody")
	}
	return apitype.PolicyBody{Policy: apitype.Policy(*w.Policy)}, nil
}

// presenceWire is the body of PUT /v1/me/presence; a missing status is
// offline.
type presenceWire struct {
	Status wireStatus `json:"status"`
	Text   string     `json:"text,omitempty"`
}

func (w presenceWire) request() apitype.Presence {
	st := apitype.PresenceStatus(w.Status)
	if st == "" {
		st = apitype.StatusOffline
	}
	return apitype.Presence{Status: st, Text: w.Text}
}

// parseDuration reads a duration field: a Go duration between min and max.
func parseDuration(field, value, code string, min, max time.Duration, example string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil || d < min || d > max {
		return 0, badValue(code, "%s %s is not a duration from %s to %s, such as %s", field, sentence.Quote(value), shortDuration(min), shortDuration(max), example)
	}
	return d, nil
}

// shortDuration formats d without zero minutes and seconds ("24h", not
// "24h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
