package scenario

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// String writes the duration the way scenario files do: "30s", "250ms".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes "30s" rather than nanoseconds, so a marshalled
// scenario loads again.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML accepts the same text as the scenario loader, for code that
// decodes fragments with plain yaml.v3 (e.g. --set overrides).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 30s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil && n.Value == "0" {
		v, err = 0, nil
	}
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 30s, 1m30s, 250ms)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "30s", matching the schema.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
