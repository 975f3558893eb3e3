package portal

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Helpers shared by the API tests.

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func items(body map[string]any) []any { l, _ := body["items"].([]any); return l }

// apiErr returns the code and field of an error body.
func apiErr(body map[string]any) (code, field string) {
	e := obj(body["error"])
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

// raw sends a body with any content type and returns status and body text.
func (e *env) raw(method, path, token, contentType, body string) (int, string) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res := e.do(req)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// want fails unless the request answers status.
func (e *env) want(status int, method, path, token string, body any) map[string]any {
	e.t.Helper()
	code, res := e.api(method, path, token, body)
	if code != status {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, code, status, res)
	}
	return res
}

// wantErr fails unless the request is refused with status, code and field.
func (e *env) wantErr(status int, code, field, method, path, token string, body any) {
	e.t.Helper()
	got, res := e.api(method, path, token, body)
	c, f := apiErr(res)
	if got != status || (code != "" && c != code) || f != field {
		e.t.Errorf("%s %s: %d %s field %q, want %d %s field %q: %v", method, path, got, c, f, status, code, field, res)
	}
}

// account returns the tenant id and user id behind a token.
func (e *env) account(token string) (tenantID, userID string) {
	e.t.Helper()
	res := e.want(http.StatusOK, "GET", "/api/v1/account", token, nil)
	return obj(res["tenant"])["id"].(string), obj(res["user"])["id"].(string)
}

// member adds a user with role to the tenant of owner and returns a session.
func (e *env) member(owner, email, role string) string {
	e.t.Helper()
	ctx := context.Background()
	tenantID, _ := e.account(owner)
	_, raw, err := e.st.CreateInvitation(ctx, store.Actor{Email: "test"}, tenantID, email, role)
	if err != nil {
		e.t.Fatal(err)
	}
	hash, err := e.srv.hashPassword("member password 1")
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.st.AcceptInvitation(ctx, store.Actor{Email: email}, raw, hash)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.srv.issueSession(context.Background(), u, store.SessionAPI, "192.0.2.1", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// apiToken issues an API token with scope for the user behind session.
func (e *env) apiToken(session, scope string) string {
	e.t.Helper()
	res := e.want(http.StatusOK, "GET", "/api/v1/account", session, nil)
	_, raw, err := e.st.CreateAPIToken(context.Background(), store.Actor{Email: "test"}, obj(res["user"])["id"].(string), "t-"+scope, scope)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// addKey uploads a fresh key and returns its id.
func (e *env) addKey(token, name string) string {
	e.t.Helper()
	res := e.want(http.StatusCreated, "POST", "/api/v1/ssh-keys", token, map[string]string{"name": name, "public_key": pubKey(e.t, name)})
	return res["id"].(string)
}

// order orders a VM and returns its id.
func (e *env) order(token, name, plan, image string, keys ...string) string {
	e.t.Helper()
	res := e.want(http.StatusCreated, "POST", "/api/v1/vms", token, map[string]any{"name": name, "plan": plan, "image": image, "ssh_keys": keys})
	return res["id"].(string)
}

// noSecrets fails if a response mentions password hashes.
func noSecrets(t *testing.T, what string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	if s := string(b); strings.Contains(s, "password") || strings.Contains(s, "$2a$") || strings.Contains(s, "$2b$") {
		t.Errorf("%s leaks a password hash: %s", what, s)
	}
}

// apiRoutes lists method and path (fiber syntax) of every /api/v1 route.
func apiRoutes(e *env) [][2]string {
	var out [][2]string
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead || !strings.HasPrefix(r.Path, apiPrefix+"/") {
			continue
		}
		out = append(out, [2]string{r.Method, r.Path})
	}
	return out
}
