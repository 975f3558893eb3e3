package views

import "testing"

// Every signed-in user sees the token form and may revoke their own tokens;
// only roles allowed to change things are offered the write scope.
func TestTokensFormByRole(t *testing.T) {
	for _, tc := range []struct {
		user  *User
		write bool
	}{
		{owner(), true},
		{&User{Email: "mo@example.org", TenantName: "Acme", Role: "member"}, true},
		{reader(), false},
		{&User{Email: "adm@fibrix.example", Role: "admin", Staff: true}, true},
		{staff(), true}, // operator
		{&User{Email: "aud@fibrix.example", Role: "auditor", Staff: true}, false},
	} {
		t.Run(tc.user.Role, func(t *testing.T) {
			if got := tc.user.CanWriteTokens(); got != tc.write {
				t.Errorf("CanWriteTokens = %v, want %v", got, tc.write)
			}
			doc, _ := render(t, Tokens(TokensView{Page: page(tc.user, "tokens"),
				Tokens: []TokenRow{{ID: "t1", Name: "ci", Scope: "read", Prefix: "fx_ab", CreatedAt: t0}}}))
			mustCount(t, doc, testID("token-create-form"), 1)
			mustCount(t, doc, testID("token-revoke-form"), 1)
			mustCount(t, doc, `#token-scope option[value="read"]`, 1)
			want := 0
			if tc.write {
				want = 1
			}
			mustCount(t, doc, `#token-scope option[value="write"]`, want)

			// With no tokens yet the empty state links to the form.
			doc, _ = render(t, Tokens(TokensView{Page: page(tc.user, "tokens")}))
			mustCount(t, doc, testID("empty-create-token"), 1)
			mustCount(t, doc, testID("token-create-form"), 1)
		})
	}
}
