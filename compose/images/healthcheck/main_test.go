package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlan(t *testing.T) {
	prog, args, err := plan("curl", []string{"-sf", "http://127.0.0.1:4566/_localstack/health"}, "")
	require.NoError(t, err)
	assert.Equal(t, localstackStandin, prog)
	assert.Equal(t, []string{"localstack-standin", "probe", "http://127.0.0.1:4566/_localstack/health"}, args)

	prog, args, err = plan("mongosh", []string{"--quiet", "--eval", "db.adminCommand('ping')"}, "")
	require.NoError(t, err)
	assert.Equal(t, mongodbStandin, prog)
	assert.Equal(t, []string{"mongodb-standin", "probe", "127.0.0.1:27017"}, args)

	_, _, err = plan("curl", []string{"-sf"}, "")
	assert.Error(t, err)
	_, _, err = plan("wget", nil, "")
	assert.Error(t, err)
}
