package config

// TLS is [server.tls]: HTTPS and ACME.
type TLS struct{}

// validateTLS checks [server.tls].
func (c *Config) validateTLS(bad func(key, format string, args ...any)) {}
