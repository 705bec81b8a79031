package main

import "context"

func (r *runner) itemAssertionCost(ctx context.Context) error    { return nil }
func (r *runner) itemLocalEnvironment(ctx context.Context) error { return nil }
func (r *runner) itemDockerStartup(ctx context.Context) error    { return nil }
