package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
)

// A validator for the subset of JSON Schema that schema.json uses: type
// (a name or a list of names), required, properties, items and enum. It is
// enough to catch a report field that was renamed, retyped or forgotten,
// without a dependency for a full draft 2020-12 implementation.

// validate checks the JSON document doc against the embedded schema.
func validate(t *testing.T, doc []byte) error {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		return fmt.Errorf("schema.json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // keeps integers distinguishable from other numbers
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var errs []error
	check(schema, v, "$", &errs)
	return errors.Join(errs...)
}

func check(s map[string]any, v any, path string, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	if typ, ok := s["type"]; ok {
		var names []string
		switch typ := typ.(type) {
		case string:
			names = []string{typ}
		case []any:
			for _, n := range typ {
				names = append(names, n.(string))
			}
		}
		if !slices.ContainsFunc(names, func(n string) bool { return hasType(v, n) }) {
			fail("%s is not of type %v", kind(v), names)
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return equalJSON(e, v) }) {
			fail("%v is not one of %v", v, enum)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("missing required %q", r)
				}
			}
		}
		if props, ok := s["properties"].(map[string]any); ok {
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if sub, ok := obj[k]; ok {
					check(props[k].(map[string]any), sub, path+"."+k, errs)
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				check(items, e, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	}
}

func hasType(v any, name string) bool {
	switch name {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		if err != nil {
			// Integers past int64 (never produced, but legal JSON).
			_, err = strconv.ParseUint(n.String(), 10, 64)
		}
		return err == nil
	}
	return false
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// equalJSON compares an enum entry (decoded without UseNumber) with a value
// (decoded with it).
func equalJSON(e, v any) bool {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		ef, ok := e.(float64)
		return err == nil && ok && f == ef
	}
	return e == v
}

func TestValidatorCatchesMistakes(t *testing.T) {
	good, err := json.Marshal(fixedReport())
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, good); err != nil {
		t.Fatalf("fixed report: %v", err)
	}
	for name, mutate := range map[string]func(m map[string]any){
		"missing field":  func(m map[string]any) { delete(m, "verdict") },
		"wrong type":     func(m map[string]any) { m["available"] = "yes" },
		"not in enum":    func(m map[string]any) { m["reason"] = "bad-luck" },
		"non-integer":    func(m map[string]any) { m["last_op"] = 1.5 },
		"nested in item": func(m map[string]any) { m["ops"].([]any)[3].(map[string]any)["supported"] = 1 },
		"wrong version":  func(m map[string]any) { m["schema_version"] = 2 },
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		mutate(m)
		bad, _ := json.Marshal(m)
		if err := validate(t, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestJSONValidatesAgainstSchema(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	for _, k := range []string{"native", "5.4", "5.10", "5.0"} {
		t.Run(k, func(t *testing.T) {
			_, raw, _ := runJSON(t, "-kernel", k)
			if err := validate(t, raw); err != nil {
				t.Error(err)
			}
		})
	}
}
