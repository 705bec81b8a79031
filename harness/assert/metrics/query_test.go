package metrics

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseQueryAccepts(t *testing.T) {
	for _, q := range []string{
		`sum(greeting_messages_consumed_total{service="service-f"})`,
		`sum(increase(greeting_messages_consumed_total{service="service-f"}[$__range]))`,
		`histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket[$__range])))`,
		"sum(\n  rate(grpc_server_handled_total[$__range])\n)",
		`count({__name__=~"greeting_.*"}) > 0`,
	} {
		assert.NoError(t, ParseQuery(q), q)
	}
}

func TestParseQueryRejects(t *testing.T) {
	cases := []struct {
		query     string
		line, col int
		msg       string
	}{
		{"", 1, 1, "the query is empty"},
		{`sum(rate(x[5m])`, 1, 16, "PromQL: unclosed left parenthesis"},
		{`rate(greeting_messages_consumed_total)`, 1, 6, "expected type range vector"},
		{`sum(x) by`, 1, 10, `expected "("`},
		{`rate(x[$__range]) + rate(y[$__range]) +`, 1, 40, "PromQL: "},
		{`rate(x[$__range]) + rate(y[$__range]) + foo{`, 1, 45, "PromQL: "},
		{"sum(\n  rate(x)\n)", 2, 8, "expected type range vector"},
		{`x{a=~"["}`, 1, 3, "PromQL: "},
	}
	for _, tc := range cases {
		err := ParseQuery(tc.query)
		var qe *QueryError
		require.True(t, errors.As(err, &qe), "%q: %v", tc.query, err)
		assert.Contains(t, err.Error(), tc.msg, tc.query)
		assert.Equal(t, [2]int{tc.line, tc.col}, [2]int{qe.Line, qe.Col}, "%q: %v", tc.query, err)
	}
}
