package main
import (
 _ "github.com/pelletier/go-toml/v2"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/andybalholm/brotli"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/net/idna"
)
func main(){}
