package portal

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fetchOpenAPI reads the served document.
func fetchOpenAPI(t *testing.T, e *env) map[string]any {
	t.Helper()
	doc := e.want(http.StatusOK, "GET", "/api/v1/openapi.json", "", nil)
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi version: %v", doc["openapi"])
	}
	return doc
}

// TestOpenAPIMatchesRoutes checks every API route is documented and every
// documented operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	doc := fetchOpenAPI(t, e)
	documented := map[string]bool{}
	for path, item := range obj(doc["paths"]) {
		for method := range obj(item) {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	routed := map[string]bool{}
	for _, r := range apiRoutes(e) {
		path := strings.NewReplacer(":id", "{id}", ":mac", "{mac}", ":snapshotID", "{snapshotID}").Replace(strings.TrimPrefix(r[1], apiPrefix))
		routed[r[0]+" "+path] = true
	}
	for k := range routed {
		if !documented[k] {
			t.Errorf("route %s is not documented", k)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("documented %s has no route", k)
		}
	}
	if len(routed) < 30 {
		t.Errorf("only %d routes", len(routed))
	}
	if obj(obj(obj(doc["components"])["securitySchemes"])["bearerAuth"])["scheme"] != "bearer" {
		t.Error("no bearerAuth scheme")
	}
	// Every $ref resolves.
	b, _ := json.Marshal(doc)
	schemas := obj(obj(doc["components"])["schemas"])
	for _, part := range strings.Split(string(b), `"$ref":"#/components/schemas/`)[1:] {
		name := part[:strings.IndexByte(part, '"')]
		if schemas[name] == nil {
			t.Errorf("dangling $ref %s", name)
		}
	}
}

// responseSchema finds the documented schema of a response, resolving $ref.
func responseSchema(t *testing.T, doc map[string]any, method, path, status string) map[string]any {
	t.Helper()
	op := obj(obj(obj(doc["paths"])[path])[strings.ToLower(method)])
	s := obj(obj(obj(obj(obj(op["responses"])[status])["content"])["application/json"])["schema"])
	if s == nil {
		t.Fatalf("%s %s %s: no documented schema", method, path, status)
	}
	return resolve(doc, s)
}

func resolve(doc, s map[string]any) map[string]any {
	if ref, ok := s["$ref"].(string); ok {
		return obj(obj(obj(doc["components"])["schemas"])[strings.TrimPrefix(ref, "#/components/schemas/")])
	}
	return s
}

func propertyNames(s map[string]any) []string {
	return slices.Sorted(maps.Keys(obj(s["properties"])))
}

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestOpenAPIMatchesResponses checks that real answers carry exactly the
// documented properties.
func TestOpenAPIMatchesResponses(t *testing.T) {
	e := newEnv(t)
	doc := fetchOpenAPI(t, e)
	cust := e.customer("Docsmith", "d@docs.example")
	admin := e.staff(store.RoleAdmin)
	e.image("debian-12")
	key := e.addKey(cust, "laptop")
	vm := e.order(cust, "web", "nano", "debian-12", key)
	tenantID, _ := e.account(cust)
	failed := e.order(cust, "broken", "nano", "debian-12", key)
	failVM(t, e, failed)
	kvm1 := hostID(t, e, "kvm-1")
	subnet := map[string]any{"name": "docs-net", "cidr": "192.0.2.0/24", "range_start": "192.0.2.10", "range_end": "192.0.2.20"}

	for _, tc := range []struct {
		name, method, path, docPath, status, token string
		body                                       any
		listItem                                   bool
	}{
		{"vm detail", "GET", "/vms/" + vm, "/vms/{id}", "200", cust, nil, false},
		{"vm list item", "GET", "/vms", "/vms", "200", cust, nil, true},
		{"vm list", "GET", "/vms", "/vms", "200", cust, nil, false},
		{"ssh key list item", "GET", "/ssh-keys", "/ssh-keys", "200", cust, nil, true},
		{"ssh key", "GET", "/ssh-keys/" + key, "/ssh-keys/{id}", "200", cust, nil, false},
		{"quota", "GET", "/quota", "/quota", "200", cust, nil, false},
		{"account", "GET", "/account", "/account", "200", cust, nil, false},
		{"audit item", "GET", "/audit", "/audit", "200", cust, nil, true},
		{"vm exposure", "PATCH", "/vms/" + vm, "/vms/{id}", "200", cust, map[string]any{"expose_http": true}, false},
		{"forward create", "POST", "/forwards", "/forwards", "201", cust, map[string]any{"vm": vm, "target_port": 22}, false},
		{"forward item", "GET", "/forwards", "/forwards", "200", cust, nil, true},
		{"dns record create", "POST", "/dns/records", "/dns/records", "201", cust, map[string]any{"name": "www", "type": "A", "value": "192.0.2.1"}, false},
		{"dns record item", "GET", "/dns/records", "/dns/records", "200", cust, nil, true},
		{"reverse dns", "GET", "/vms/" + vm + "/reverse-dns", "/vms/{id}/reverse-dns", "200", cust, nil, false},
		{"reverse dns invalid", "PUT", "/vms/" + vm + "/reverse-dns", "/vms/{id}/reverse-dns", "422", cust, map[string]any{"ptr": "no spaces"}, false},
		{"reverse dns without address", "PUT", "/vms/" + vm + "/reverse-dns", "/vms/{id}/reverse-dns", "409", cust, map[string]any{"ptr": ""}, false},
		{"action refused", "POST", "/vms/" + vm + "/actions", "/vms/{id}/actions", "422", cust, map[string]string{"type": "start", "plan": "small"}, false},
		{"resize while pending", "POST", "/vms/" + vm + "/actions", "/vms/{id}/actions", "409", cust, map[string]string{"type": "resize", "plan": "small"}, false},
		{"action", "POST", "/vms/" + vm + "/actions", "/vms/{id}/actions", "202", cust, map[string]string{"type": "delete"}, false},
		{"admin tenant item", "GET", "/admin/tenants", "/admin/tenants", "200", admin, nil, true},
		{"admin tenant", "GET", "/admin/tenants/" + tenantID, "/admin/tenants/{id}", "200", admin, nil, false},
		{"admin plan item", "GET", "/admin/plans", "/admin/plans", "200", admin, nil, true},
		{"admin image item", "GET", "/admin/images", "/admin/images", "200", admin, nil, true},
		{"admin vm item", "GET", "/admin/vms", "/admin/vms", "200", admin, nil, true},
		{"admin user item", "GET", "/admin/users", "/admin/users", "200", admin, nil, true},
		{"quota defaults", "GET", "/admin/quota-defaults", "/admin/quota-defaults", "200", admin, nil, false},
		{"admin host create", "POST", "/admin/hosts", "/admin/hosts", "201", admin, map[string]any{"name": "kvm-9", "uri": "test:///default"}, false},
		{"admin host item", "GET", "/admin/hosts", "/admin/hosts", "200", admin, nil, true},
		{"admin host", "GET", "/admin/hosts/" + kvm1, "/admin/hosts/{id}", "200", admin, nil, false},
		{"admin host patch", "PATCH", "/admin/hosts/" + kvm1, "/admin/hosts/{id}", "200", admin, map[string]any{"cpu_ratio": 3}, false},
		{"admin host invalid", "PATCH", "/admin/hosts/" + kvm1, "/admin/hosts/{id}", "422", admin, map[string]any{"cpu_ratio": 99}, false},
		{"admin subnet create", "POST", "/admin/subnets", "/admin/subnets", "201", admin, subnet, false},
		{"admin subnet item", "GET", "/admin/subnets", "/admin/subnets", "200", admin, nil, true},
		{"admin vm retry", "POST", "/admin/vms/" + failed + "/retry", "/admin/vms/{id}/retry", "202", admin, nil, false},
		{"error", "GET", "/vms/nope", "/vms/{id}", "404", cust, nil, false},
		{"validation error", "POST", "/ssh-keys", "/ssh-keys", "422", cust, map[string]string{"name": "x", "public_key": "bad"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body := e.api(tc.method, apiPrefix+tc.path, tc.token, tc.body)
			if itoa(code) != tc.status {
				t.Fatalf("status %d, want %s: %v", code, tc.status, body)
			}
			schema := responseSchema(t, doc, tc.method, tc.docPath, tc.status)
			if tc.listItem {
				if len(items(body)) == 0 {
					t.Fatalf("empty list: %v", body)
				}
				body = obj(items(body)[0])
				schema = resolve(doc, obj(obj(obj(schema["properties"])["items"])["items"]))
			}
			if got, want := keysOf(body), propertyNames(schema); !slices.Equal(got, want) {
				t.Errorf("keys %v, documented %v", got, want)
			}
			if tc.status >= "400" {
				// field is left out when no input is at fault.
				es := obj(obj(schema["properties"])["error"])
				got, want := keysOf(obj(body["error"])), propertyNames(es)
				for _, k := range got {
					if !slices.Contains(want, k) {
						t.Errorf("error key %s not documented", k)
					}
				}
				for _, k := range es["required"].([]any) {
					if !slices.Contains(got, k.(string)) {
						t.Errorf("error lacks required %s", k)
					}
				}
				if tc.status == "422" && !slices.Equal(got, want) {
					t.Errorf("error keys %v, documented %v", got, want)
				}
			}
		})
	}
}

// TestOpenAPIHostNested checks the nested objects of a host answer.
func TestOpenAPIHostNested(t *testing.T) {
	e := newEnv(t)
	doc := fetchOpenAPI(t, e)
	admin := e.staff(store.RoleAdmin)
	h := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/kvm-1", admin, nil)
	host := responseSchema(t, doc, "GET", "/admin/hosts/{id}", "200")
	props := obj(host["properties"])
	for _, k := range []string{"ratios", "reserved", "capacity"} {
		if got, want := keysOf(obj(h[k])), propertyNames(resolve(doc, obj(props[k]))); !slices.Equal(got, want) {
			t.Errorf("%s keys %v, documented %v", k, got, want)
		}
	}
	capSchema := obj(resolve(doc, obj(props["capacity"]))["properties"])
	for _, r := range []string{"cpu", "memory", "disk"} {
		if got, want := keysOf(obj(obj(h["capacity"])[r])), propertyNames(resolve(doc, obj(capSchema[r]))); !slices.Equal(got, want) {
			t.Errorf("capacity.%s keys %v, documented %v", r, got, want)
		}
	}
}

// TestOpenAPIExamplesRun sends every request body example of the document,
// as written, to its route: a documented example is always accepted.
func TestOpenAPIExamplesRun(t *testing.T) {
	e := newEnv(t)
	doc := fetchOpenAPI(t, e)
	schemas := obj(obj(doc["components"])["schemas"])
	admin, customer := e.staff(store.RoleAdmin), e.customer("Examples", "examples@customer.example")
	ran := 0
	paths := slices.Sorted(maps.Keys(obj(doc["paths"])))
	for _, path := range paths {
		op := obj(obj(obj(doc["paths"])[path])["post"])
		ref, _ := obj(obj(obj(obj(op["requestBody"])["content"])["application/json"])["schema"])["$ref"].(string)
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		example := obj(schemas[name])["example"]
		if example == nil {
			continue
		}
		if strings.Contains(path, "{") {
			t.Errorf("%s: examples are run only on paths without parameters", path)
			continue
		}
		token := customer
		if strings.HasPrefix(path, "/admin/") {
			token = admin
		}
		var status int
		for code := range obj(op["responses"]) {
			if code[0] == '2' {
				status, _ = strconv.Atoi(code)
			}
		}
		e.want(status, "POST", apiPrefix+path, token, example)
		ran++
	}
	if ran < 7 {
		t.Errorf("only %d examples ran", ran)
	}
}
