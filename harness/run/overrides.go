package run

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ApplySet applies a --set path=value override to v (a pointer to a struct
// decoded from YAML). Paths follow the YAML field names: "load.users=5",
// "assert.data[0].within=30s", "environment.env.service-a.LOG_LEVEL=debug".
// The value is decoded as YAML into the field's type, so every type the
// scenario file accepts is accepted here with the same rules.
func ApplySet(v any, set string) error {
	path, value, ok := strings.Cut(set, "=")
	if !ok || path == "" {
		return fmt.Errorf("--set %q: want path=value", set)
	}
	target, err := walk(reflect.ValueOf(v).Elem(), splitPath(path), path)
	if err != nil {
		return fmt.Errorf("--set %s: %w", path, err)
	}
	fresh := reflect.New(target.typ)
	dec := yaml.NewDecoder(strings.NewReader(value))
	dec.KnownFields(true) // as strict as the scenario file itself
	if err := dec.Decode(fresh.Interface()); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("--set %s: %q is not a valid %s: %w", path, value, target.typ, err)
	}
	target.assign(fresh.Elem())
	return nil
}

// slot is a settable place: a struct field or slice element, or a map entry.
type slot struct {
	typ    reflect.Type
	assign func(reflect.Value)
}

func splitPath(p string) []string {
	var parts []string
	for seg := range strings.SplitSeq(p, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				parts = append(parts, seg[:i])
			}
			j := strings.IndexByte(seg, ']')
			if j < i {
				break
			}
			parts = append(parts, seg[i:j+1])
			seg = seg[j+1:]
		}
		if seg != "" {
			parts = append(parts, seg)
		}
	}
	return parts
}

func walk(v reflect.Value, parts []string, full string) (slot, error) {
	if len(parts) == 0 {
		return slot{typ: v.Type(), assign: func(x reflect.Value) { v.Set(x) }}, nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	part := parts[0]
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag == part {
				return walk(v.Field(i), parts[1:], full)
			}
		}
		return slot{}, fmt.Errorf("no field %q", part)
	case reflect.Slice:
		if !strings.HasPrefix(part, "[") {
			return slot{}, fmt.Errorf("%q: want an index like [0]", part)
		}
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || i < 0 || i >= v.Len() {
			return slot{}, fmt.Errorf("index %s out of range (length %d)", part, v.Len())
		}
		return walk(v.Index(i), parts[1:], full)
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		key := reflect.ValueOf(part).Convert(v.Type().Key())
		if len(parts) == 1 {
			return slot{typ: v.Type().Elem(), assign: func(x reflect.Value) { v.SetMapIndex(key, x) }}, nil
		}
		// Maps hold values, not places: copy out, change, store back.
		elem := reflect.New(v.Type().Elem()).Elem()
		if cur := v.MapIndex(key); cur.IsValid() {
			elem.Set(cur)
		}
		inner, err := walk(elem, parts[1:], full)
		if err != nil {
			return slot{}, err
		}
		return slot{typ: inner.typ, assign: func(x reflect.Value) {
			inner.assign(x)
			v.SetMapIndex(key, elem)
		}}, nil
	}
	return slot{}, fmt.Errorf("%q: %s has no fields", part, v.Type())
}
