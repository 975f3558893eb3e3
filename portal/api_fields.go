package portal

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// jsonFields lists the JSON names a request struct accepts.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
				}
				continue
			}
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out = append(out, name)
		}
	}
	walk(t)
	slices.Sort(out)
	return slices.Compact(out)
}

// synonyms are names people try for a field we call otherwise.
func synonyms(field string) []string {
	switch field {
	case "data", "content", "target":
		return []string{"value"}
	case "url", "image_url", "source":
		return []string{"source_url"}
	case "first", "start":
		return []string{"range_start"}
	case "last", "end":
		return []string{"range_end"}
	case "key", "pubkey":
		return []string{"public_key"}
	case "memory", "ram":
		return []string{"memory_mib"}
	case "disk":
		return []string{"disk_gib"}
	case "cpus", "cores":
		return []string{"vcpus"}
	}
	return nil
}

// unknownFieldMessage names the field a client probably meant and the ones
// the request takes.
func unknownFieldMessage(field string, known []string) string {
	msg := fmt.Sprintf("unknown field %q", field)
	if s := suggestField(field, known); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	if len(known) > 0 {
		msg += " This request takes: " + strings.Join(known, ", ")
	}
	return msg
}

func suggestField(field string, known []string) string {
	f := strings.ToLower(field)
	for _, s := range synonyms(f) {
		if slices.Contains(known, s) {
			return s
		}
	}
	for _, k := range known {
		if strings.HasPrefix(k, f+"_") || strings.HasSuffix(k, "_"+f) {
			return k
		}
	}
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(f, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
