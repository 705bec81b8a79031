package scrape

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfig(t *testing.T) {
	out, err := Config([]Target{
		{Service: "service-b", Address: "127.0.0.1:4001", Path: "metrics"},
		{Service: "service-a", Address: "service-a:9464"},
	})
	require.NoError(t, err)
	var got config
	require.NoError(t, yaml.Unmarshal(out, &got))
	assert.Equal(t, "1s", got.Global.ScrapeInterval)
	assert.Equal(t, "1s", got.Global.ScrapeTimeout, "timeout may not exceed the interval")
	require.Len(t, got.ScrapeConfigs, 2)
	a, b := got.ScrapeConfigs[0], got.ScrapeConfigs[1]
	assert.Equal(t, "service-a", a.JobName, "sorted by service")
	assert.Equal(t, "/metrics", a.MetricsPath)
	assert.Equal(t, []string{"service-a:9464"}, a.StaticConfigs[0].Targets)
	assert.Equal(t, map[string]string{"service": "service-a"}, a.StaticConfigs[0].Labels)
	assert.Equal(t, "/metrics", b.MetricsPath, "a leading slash is added")
	assert.Equal(t, []string{"127.0.0.1:4001"}, b.StaticConfigs[0].Targets)
}

func TestConfigRejectsBadTargets(t *testing.T) {
	_, err := Config([]Target{{Service: "a", Address: "x:1"}, {Service: "a", Address: "y:1"}})
	assert.ErrorContains(t, err, "twice")
	_, err = Config([]Target{{Service: "a"}})
	assert.ErrorContains(t, err, "required")
}

func TestConfigEmpty(t *testing.T) {
	out, err := Config(nil)
	require.NoError(t, err)
	var got config
	require.NoError(t, yaml.Unmarshal(out, &got))
	assert.Empty(t, got.ScrapeConfigs)
}
