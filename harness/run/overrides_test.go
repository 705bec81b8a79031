package run

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type overrideDoc struct {
	Name string `yaml:"name"`
	Load *struct {
		Users int `yaml:"users"`
	} `yaml:"load"`
	Data []struct {
		Within string `yaml:"within"`
	} `yaml:"data"`
	Env map[string]map[string]string `yaml:"env"`
}

func TestApplySet(t *testing.T) {
	d := &overrideDoc{Data: make([]struct {
		Within string `yaml:"within"`
	}, 2)}
	require.NoError(t, ApplySet(d, "name=quick"))
	require.NoError(t, ApplySet(d, "load.users=5"))
	require.NoError(t, ApplySet(d, "data[1].within=30s"))
	require.NoError(t, ApplySet(d, "env.service-a.LOG_LEVEL=debug"))
	require.NoError(t, ApplySet(d, "env.service-a.GREETING=hi"))
	assert.Equal(t, "quick", d.Name)
	assert.Equal(t, 5, d.Load.Users)
	assert.Equal(t, "30s", d.Data[1].Within)
	assert.Equal(t, map[string]string{"LOG_LEVEL": "debug", "GREETING": "hi"}, d.Env["service-a"])

	assert.ErrorContains(t, ApplySet(d, "load.user=5"), `no field "user"`)
	assert.ErrorContains(t, ApplySet(d, "load.users=five"), "not a valid int")
	assert.ErrorContains(t, ApplySet(d, "data[2].within=1s"), "out of range")
	assert.ErrorContains(t, ApplySet(d, "nothing"), "path=value")
}
