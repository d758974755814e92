package config

// NodeReplication is [replication]: this node's replication and
// forwarding endpoint.
type NodeReplication struct{}

// validateReplication checks [replication].
func (c *Config) validateReplication(bad func(key, format string, args ...any)) {}
