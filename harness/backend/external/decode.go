package external

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/meshproof/meshproof/harness/topology"
)

// decoder walks the YAML nodes by hand rather than unmarshalling into a
// struct: every error must point at the line and column of the offending
// key or value, and an endpoints file is small enough that strictness costs
// nothing.
type decoder struct {
	file   string
	topo   *topology.Topology
	lookup func(string) (string, bool)
}

// posErr is an error at a place in the file.
func (d *decoder) posErr(n *yaml.Node, field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return fmt.Errorf("%s:%d:%d: %s", d.file, n.Line, n.Column, msg)
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// pairs returns a mapping's key/value nodes, refusing duplicate keys and
// merge keys (a merge would hide where a value came from).
func (d *decoder) pairs(n *yaml.Node, field string) ([][2]*yaml.Node, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, d.posErr(n, field, "want a mapping, got %s", kindName(n))
	}
	seen := map[string]bool{}
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return nil, d.posErr(k, field, "want a plain key")
		}
		if seen[k.Value] {
			return nil, d.posErr(k, join(field, k.Value), "given twice")
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// str reads a non-empty string scalar.
func (d *decoder) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		return "", d.posErr(n, field, "want a non-empty string, got %s", kindName(n))
	}
	return n.Value, nil
}

// decode reads the whole file into f.
func (d *decoder) decode(doc *yaml.Node, f *fileSpec) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return fmt.Errorf("%s: empty endpoints file: want services: and optionally toxiproxy:", d.file)
	}
	top, err := d.pairs(doc.Content[0], "")
	if err != nil {
		return err
	}
	for _, kv := range top {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "services":
			if err := d.services(v, f); err != nil {
				return err
			}
		case "toxiproxy":
			if f.toxiproxy, err = d.toxiproxy(v); err != nil {
				return err
			}
		default:
			return d.posErr(k, "", "unknown field %q (want services or toxiproxy)", k.Value)
		}
	}
	if len(f.services) == 0 {
		return d.posErr(doc.Content[0], "services", "no service is mapped")
	}
	return nil
}

func (d *decoder) services(n *yaml.Node, f *fileSpec) error {
	ps, err := d.pairs(n, "services")
	if err != nil {
		return err
	}
	for _, kv := range ps {
		k, v := kv[0], kv[1]
		svc, ok := d.topo.Services[k.Value]
		if !ok {
			return d.posErr(k, "services", "unknown service %q: %s has %s", k.Value, d.topo.File, strings.Join(d.topo.Names(), ", "))
		}
		s, err := d.service(v, svc, "services."+k.Value)
		if err != nil {
			return err
		}
		f.services[k.Value] = s
	}
	return nil
}

func (d *decoder) service(n *yaml.Node, svc *topology.Service, field string) (*serviceSpec, error) {
	ps, err := d.pairs(n, field)
	if err != nil {
		return nil, err
	}
	s := &serviceSpec{ports: map[int]string{}}
	for _, kv := range ps {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "ports":
			if err := d.ports(v, svc, join(field, "ports"), s); err != nil {
				return nil, err
			}
		case "endpoint":
			if s.endpoint, err = d.endpoint(v, join(field, "endpoint")); err != nil {
				return nil, err
			}
		default:
			return nil, d.posErr(k, field, "unknown field %q (want ports or endpoint)", k.Value)
		}
	}
	if len(s.ports) == 0 && s.endpoint == "" {
		return nil, d.posErr(n, field, "give ports or endpoint")
	}
	return s, nil
}

func (d *decoder) ports(n *yaml.Node, svc *topology.Service, field string, s *serviceSpec) error {
	ps, err := d.pairs(n, field)
	if err != nil {
		return err
	}
	declared := declaredPorts(svc)
	for _, kv := range ps {
		k, v := kv[0], kv[1]
		port, err := strconv.Atoi(k.Value)
		if err != nil || port <= 0 || port > 65535 {
			return d.posErr(k, field, "want a container port number, got %q", k.Value)
		}
		if !slices.Contains(declared, port) {
			return d.posErr(k, field, "%s declares no port %d (it has %s)", svc.Name, port, portList(declared))
		}
		raw, err := d.str(v, join(field, k.Value))
		if err != nil {
			return err
		}
		addr, err := expand(raw, d.lookup)
		if err != nil {
			return d.posErr(v, join(field, k.Value), "%v", err)
		}
		if err := checkHostPort(addr); err != nil {
			return d.posErr(v, join(field, k.Value), "%v", err)
		}
		s.ports[port] = addr
	}
	return nil
}

// endpoint checks a URL or DSN: credentials only as ${VAR}, every ${VAR}
// set now. It is kept unexpanded; Endpoint expands it when asked, so a
// secret is never held longer than needed.
func (d *decoder) endpoint(n *yaml.Node, field string) (string, error) {
	raw, err := d.str(n, field)
	if err != nil {
		return "", err
	}
	if err := checkSecrets(raw); err != nil {
		return "", d.posErr(n, field, "%v", err)
	}
	if _, err := expand(raw, d.lookup); err != nil {
		return "", d.posErr(n, field, "%v", err)
	}
	return raw, nil
}

func (d *decoder) toxiproxy(n *yaml.Node) (string, error) {
	raw, err := d.str(n, "toxiproxy")
	if err != nil {
		return "", err
	}
	v, err := expand(raw, d.lookup)
	if err != nil {
		return "", d.posErr(n, "toxiproxy", "%v", err)
	}
	hp := v
	if scheme, rest, ok := strings.Cut(v, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return "", d.posErr(n, "toxiproxy", "want http://host:port of the toxiproxy API, got scheme %q", scheme)
		}
		hp = strings.TrimSuffix(rest, "/")
	}
	if err := checkHostPort(hp); err != nil {
		return "", d.posErr(n, "toxiproxy", "%v", err)
	}
	return v, nil
}

// declaredPorts is every container port the topology gives the service:
// ports and expose, listen ports, the probe port and the metrics port.
func declaredPorts(svc *topology.Service) []int {
	set := map[int]bool{}
	for _, p := range svc.Ports {
		set[p] = true
	}
	for _, p := range svc.Meshproof.Listen {
		set[p] = true
	}
	if p := svc.Meshproof.Probe.Port; p > 0 {
		set[p] = true
	}
	if m := svc.Meshproof.Metrics; m != nil && m.Port > 0 {
		set[m.Port] = true
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func portList(ps []int) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	p, err := strconv.Atoi(port)
	if host == "" || err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	return nil
}

var (
	varRef  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	onlyVar = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)
)

// expand replaces every ${VAR} with its value; an unset variable or a
// malformed reference is an error naming it.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if rest := varRef.ReplaceAllString(s, ""); strings.Contains(rest, "${") {
		return "", fmt.Errorf("malformed variable reference in %q: write ${NAME} (letters, digits, _)", redact(s))
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// secretKeys are DSN and query keys whose value must be a ${VAR}.
var secretKeys = map[string]bool{"password": true, "passwd": true, "pass": true, "sslpassword": true, "secret": true, "token": true}

// checkSecrets refuses a literal password in a URL's userinfo or in a
// password-like key of a URL query or key=value DSN: endpoints files are
// committed, secrets are not.
func checkSecrets(s string) error {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		auth, query := rest, ""
		if j := strings.IndexAny(rest, "?#"); j >= 0 {
			auth = rest[:j]
			if rest[j] == '?' {
				query, _, _ = strings.Cut(rest[j+1:], "#")
			}
		}
		if at := strings.LastIndex(auth, "@"); at >= 0 {
			if _, pass, ok := strings.Cut(auth[:at], ":"); ok && pass != "" && !onlyVar.MatchString(pass) {
				return fmt.Errorf("literal password in %q: write it as ${VAR} and set VAR in the environment", redact(s))
			}
		}
		for kv := range strings.SplitSeq(query, "&") {
			if k, v, _ := strings.Cut(kv, "="); secretKeys[strings.ToLower(k)] && v != "" && !onlyVar.MatchString(v) {
				return fmt.Errorf("literal %s in the URL query: write it as %s=${VAR} and set VAR in the environment", k, k)
			}
		}
		return nil
	}
	for kv := range strings.FieldsSeq(s) {
		if k, v, ok := strings.Cut(kv, "="); ok && secretKeys[strings.ToLower(k)] {
			if v = strings.Trim(v, "'"); v != "" && !onlyVar.MatchString(v) {
				return fmt.Errorf("literal %s in the DSN: write it as %s=${VAR} and set VAR in the environment", k, k)
			}
		}
	}
	return nil
}

// redact hides a URL's password in error messages: the point of the check
// is that it should not be in the file, and it must not reach a log either.
func redact(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := len(rest)
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		end = j
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	user, _, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return s
	}
	return s[:i+3] + user + ":xxxxx" + rest[at:]
}
