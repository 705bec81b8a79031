package grpcx

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitMethod(t *testing.T) {
	for in, want := range map[string][2]string{
		"greeting.v3.GreetingService/Greeting":  {"greeting.v3.GreetingService", "Greeting"},
		"/greeting.v3.GreetingService/Greeting": {"greeting.v3.GreetingService", "Greeting"},
		"greeting.v3.GreetingService.Greeting":  {"greeting.v3.GreetingService", "Greeting"},
	} {
		svc, m, err := SplitMethod(in)
		assert.NoError(t, err, in)
		assert.Equal(t, want, [2]string{svc, m}, in)
	}
	for _, bad := range []string{"", "Greeting", "svc/", "/"} {
		_, _, err := SplitMethod(bad)
		assert.Error(t, err, bad)
	}
}
