package report

import (
	"encoding/xml"
	"fmt"
	"io"

	"github.com/meshproof/meshproof/harness/assert/verdict"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes one testcase per assertion, classname scenario.kind, so
// CI systems group them by kind.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: r.Scenario, Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
	for _, res := range r.Results {
		c := junitCase{Name: res.Name, Classname: r.Scenario + "." + res.Kind,
			SystemOut: fmt.Sprintf("expected %s, measured %s", res.Expected, res.Measured)}
		msg := fmt.Sprintf("%s: expected %s, measured %s", res.Status, res.Expected, res.Measured)
		switch {
		case res.Passed():
		case res.Status == verdict.Error:
			c.Error = &junitFailure{Message: msg, Type: string(res.Status), Body: res.Detail}
			s.Errors++
		default:
			c.Failure = &junitFailure{Message: msg, Type: string(res.Status), Body: res.Detail}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	return enc.Encode(junitSuites{Suites: []junitSuite{s}})
}
