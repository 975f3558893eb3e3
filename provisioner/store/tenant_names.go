package store

import (
	"fmt"
	"strings"
	"unicode"

	"gorm.io/gorm"
)

// confusableScripts are the scripts whose letters look alike; a name that
// mixes them ("pаypal" with a Cyrillic а) is made to impersonate another.
var confusableScripts = []struct {
	name  string
	table *unicode.RangeTable
}{
	{"Latin", unicode.Latin}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
	{"Armenian", unicode.Armenian}, {"Cherokee", unicode.Cherokee},
}

// mixedScripts names the scripts a name mixes, or returns "".
func mixedScripts(name string) string {
	var seen []string
	for _, r := range name {
		if !unicode.IsLetter(r) {
			continue
		}
		for _, sc := range confusableScripts {
			if unicode.Is(sc.table, r) {
				found := false
				for _, s := range seen {
					found = found || s == sc.name
				}
				if !found {
					seen = append(seen, sc.name)
				}
			}
		}
	}
	if len(seen) < 2 {
		return ""
	}
	return strings.Join(seen, " and ")
}

// distinctTenantName refuses a name that impersonates or repeats another
// organisation's.
func distinctTenantName(tx *gorm.DB, name string) error {
	if mix := mixedScripts(name); mix != "" {
		return E(ErrInvalid, "tenant", fmt.Sprintf("the organisation name mixes %s letters that look alike; write it in one script", mix))
	}
	var n int64
	if err := tx.Model(&Tenant{}).Where("LOWER(name) = LOWER(?)", name).Count(&n).Error; err != nil {
		return fmt.Errorf("check tenant name: %w", err)
	}
	if n > 0 {
		return E(ErrConflict, "tenant", "an organisation with this name already exists; choose another")
	}
	return nil
}
