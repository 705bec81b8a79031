package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestLoadFanoutExample(t *testing.T) {
	sc, err := Load("testdata/fanout-load.yaml")
	require.NoError(t, err)

	assert.Equal(t, "fanout-load", sc.Name)
	assert.Equal(t, "testdata/fanout-load.yaml", sc.File)
	assert.Equal(t, "docker-compose.yml", sc.Environment.Compose)
	require.NotNil(t, sc.Load)
	assert.Equal(t, "http://gateway:8080/api/greeting", sc.Load.Target)
	assert.Equal(t, "closed", sc.Load.Model)
	assert.Equal(t, 20, sc.Load.Users)
	assert.Equal(t, 30*time.Second, sc.Load.Duration.D())
	assert.Equal(t, 3*time.Second, sc.Load.Warmup.D())
	assert.Equal(t, []string{"p(99) < 250ms", "error_rate == 0", "throughput > 100/s"}, sc.Assert.Load)
	require.Len(t, sc.Assert.Traces, 1)
	assert.Equal(t, "100%", sc.Assert.Traces[0].Require)
	assert.Contains(t, sc.Assert.Traces[0].Shape, "        ~> service-f\n")
	require.Len(t, sc.Assert.Metrics, 2)
	assert.Equal(t, "== load.ok", sc.Assert.Metrics[0].Expect)
	require.Len(t, sc.Assert.Logs, 2)
	assert.Equal(t, map[string]string{"level": "error"}, sc.Assert.Logs[0].None)
	assert.Equal(t, &EveryRule{Has: "trace_id"}, sc.Assert.Logs[1].Every)
	require.Len(t, sc.Assert.Data, 4)
	assert.Equal(t, &MongoQuery{DB: "service-f", Collection: "messages"}, sc.Assert.Data[0].Mongo)
	assert.Equal(t, &QueueQuery{Queue: "service-d.greeting"}, sc.Assert.Data[1].RabbitMQ)
	assert.Equal(t, "SELECT count(*) FROM greeting_ledger", sc.Assert.Data[2].Postgres)
	assert.Equal(t, &S3Query{Bucket: "greetings-raw", Prefix: "service-h/"}, sc.Assert.Data[3].S3)
	assert.Equal(t, 15*time.Second, sc.Assert.Data[3].Within.D())

	// Positions point at values, for validation done elsewhere.
	line, col := sc.Pos("assert.data[1].within")
	assert.Equal(t, [2]int{35, 73}, [2]int{line, col})
	line, col = sc.Pos("load.users")
	assert.Equal(t, [2]int{6, 10}, [2]int{line, col})
	line, col = sc.Pos("load.headers.X-Missing")
	assert.Equal(t, [2]int{4, 3}, [2]int{line, col}, "unwritten paths fall back to the nearest written parent")
	e := sc.Errorf("assert.traces[0].require", "bad share %q", "x")
	assert.Equal(t, "testdata/fanout-load.yaml:14:16: assert.traces[0].require: bad share \"x\"", e.Error())
	e = sc.ErrorfLine("assert.traces[0].shape", 4, "unknown edge")
	assert.Equal(t, 19, e.Line, "line 4 of a block scalar starting under line 15")

	// Round trip: marshal and load again.
	out, err := yaml.Marshal(sc)
	require.NoError(t, err)
	again, err := Parse("roundtrip.yaml", out)
	require.NoError(t, err, string(out))
	sc.pos, again.pos = nil, nil
	again.File = sc.File
	assert.Equal(t, sc, again)
}

func TestComposePath(t *testing.T) {
	sc, err := Load("testdata/fanout-load.yaml")
	require.NoError(t, err)
	p, err := sc.ComposePath()
	require.NoError(t, err)
	want, err := filepath.Abs("../../docker-compose.yml")
	require.NoError(t, err)
	assert.Equal(t, want, p, "found in a parent of the scenario's directory")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.yml"), []byte("services: {}\n"), 0o644))
	sc = &Scenario{File: filepath.Join(dir, "s.yaml"), Environment: Environment{Compose: "c.yml"}}
	p, err = sc.ComposePath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "c.yml"), p, "next to the scenario first")

	sc.Environment.Compose = "nope-compose.yml"
	_, err = sc.ComposePath()
	assert.ErrorContains(t, err, `environment.compose: "nope-compose.yml" not found in`)
}

func TestParseErrors(t *testing.T) {
	const head = "name: x\nenvironment: { compose: docker-compose.yml }\n"
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top-level field", head + "lod: {}\n",
			[]string{`x.yaml:3:1: lod: unknown field "lod" (want one of: assert, compare, description, environment, faults, load, name)`}},
		{"unknown nested field", head + "load:\n  target: http://gateway:8080/\n  model: closed\n  user: 5\n",
			[]string{`x.yaml:6:3: load.user: unknown field "user"`}},
		{"unknown field in a list item", head + "assert:\n  data:\n    - { mongo: { db: a, collection: b }, count: \"> 0\" }\n    - { rabbitmq: { queue: q }, depht: \"== 0\" }\n",
			[]string{`x.yaml:6:33: assert.data[1].depht: unknown field "depht"`}},
		{"bad duration", head + "assert:\n  data:\n    - { mongo: { db: a, collection: b }, count: \"> 0\" }\n    - { rabbitmq: { queue: q }, depth: \"== 0\", within: 15 sec }\n",
			[]string{`x.yaml:6:56: assert.data[1].within: "15 sec" is not a duration`}},
		{"negative duration", head + "load:\n  duration: -5s\n",
			[]string{`x.yaml:4:3: load.target: required field is missing`, `x.yaml:4:13: load.duration: "-5s": a duration must not be negative`}},
		{"string for an int", head + "load:\n  users: twenty\n",
			[]string{`x.yaml:4:3: load.target: required field is missing`, `x.yaml:4:10: load.users: "twenty" is not an integer`}},
		{"float for an int", head + "load:\n  users: 2.5\n",
			[]string{`x.yaml:4:3: load.target: required field is missing`, `x.yaml:4:10: load.users: "2.5" is not an integer`}},
		{"list for a string", head + "description: [a, b]\n",
			[]string{`x.yaml:3:14: description: want a string, got a list`}},
		{"mapping for a list", head + "faults: { action: kill }\n",
			[]string{`x.yaml:3:9: faults: want a list, got a mapping`}},
		{"scalar for a mapping", head + "assert: everything\n",
			[]string{`x.yaml:3:9: assert: want a mapping, got "everything"`}},
		{"bool", head + "assert:\n  traces:\n    - attributes: [{ service: a, key: k, exists: maybe }]\n",
			[]string{`x.yaml:5:50: assert.traces[0].attributes[0].exists: "maybe" is not true or false`}},
		{"missing required", "environment: { compose: c.yml }\n",
			[]string{`x.yaml:1:1: name: required field is missing`}},
		{"missing nested required", head + "assert:\n  data:\n    - { mongo: { db: a }, count: \"> 0\" }\n",
			[]string{`x.yaml:5:16: assert.data[0].mongo.collection: required field is missing`}},
		{"duplicate key", head + "name: y\n",
			[]string{`x.yaml:3:1: name: duplicate key (first at line 1)`}},
		{"several errors, in file order", head + "load:\n  users: x\n  duration: soon\nbogus: 1\n",
			[]string{`x.yaml:4:3: load.target: required field is missing`, `x.yaml:4:10: load.users: "x" is not an integer`, `x.yaml:5:13: load.duration: "soon" is not a duration`, `x.yaml:6:1: bogus: unknown field "bogus"`}},
		{"broken YAML", head + "load:\n  users: 5\n   model: closed\n",
			[]string{`x.yaml:5: invalid YAML: mapping values are not allowed in this context`}},
		{"bad indentation", "name: x\n environment: {}\n",
			[]string{`x.yaml:2: invalid YAML:`}},
		{"empty file", "", []string{`x.yaml:1:1: the file is empty`}},
		{"comment only", "# nothing\n", []string{`x.yaml:1:1: the file is empty`}},
		{"top-level list", "- a\n", []string{`x.yaml:1:1: want a mapping, got a list`}},
		{"two documents", head + "---\nname: y\n", []string{`x.yaml:4:1: a scenario file holds one YAML document`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.src))
			require.Error(t, err)
			var list ErrorList
			require.True(t, errors.As(err, &list), "an ErrorList: %v", err)
			require.Len(t, list, len(tc.want), "%v", err)
			for i, w := range tc.want {
				assert.Contains(t, list[i].Error(), w)
				assert.Equal(t, 0, indexOf(list[i].Error(), w), "message starts with the location: %s", list[i].Error())
			}
			var one *Error
			require.True(t, errors.As(err, &one), "errors.As finds a *Error")
			assert.Equal(t, "x.yaml", one.File)
		})
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestParseAnchorsAndMerge(t *testing.T) {
	src := `name: anchors
environment:
  compose: docker-compose.yml
  env:
    service-a: &common { LOG_LEVEL: debug, CALL_TIMEOUT: 1s }
    service-b:
      <<: *common
      CALL_TIMEOUT: 2s
assert:
  data:
    - &mongo { mongo: { db: d, collection: c }, count: "> 0", within: 5s }
    - { <<: *mongo, within: 10s }
`
	sc, err := Parse("a.yaml", []byte(src))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"LOG_LEVEL": "debug", "CALL_TIMEOUT": "2s"}, sc.Environment.Env["service-b"])
	require.Len(t, sc.Assert.Data, 2)
	assert.Equal(t, 10*time.Second, sc.Assert.Data[1].Within.D())
	assert.Equal(t, "c", sc.Assert.Data[1].Mongo.Collection)
}

func TestParseAliasBomb(t *testing.T) {
	src := "name: x\nenvironment: { compose: c }\n" +
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n" +
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"description: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	_, err := Parse("bomb.yaml", []byte(src))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "a"`)
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("d: 1m30s"), &v))
	assert.Equal(t, 90*time.Second, v.D.D())
	assert.Error(t, yaml.Unmarshal([]byte("d: 15 sec"), &v))
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	assert.Equal(t, "d: 1m30s\n", string(out))
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("b.yaml", "name: beta\ndescription: second\nenvironment: { compose: c.yml, services: [gateway] }\n")
	write("a.yml", "name: alpha\nenvironment: { compose: c.yml }\n")
	write("broken.yaml", "name: [\n")
	write("notes.txt", "not a scenario")
	list, err := List(dir)
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.Equal(t, Summary{Name: "alpha", File: filepath.Join(dir, "a.yml")}, list[0])
	assert.Equal(t, Summary{Name: "beta", File: filepath.Join(dir, "b.yaml"), Description: "second", Services: []string{"gateway"}}, list[1])
	assert.Equal(t, "broken", list[2].Name)
	assert.Error(t, list[2].Err)

	_, err = List(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}
