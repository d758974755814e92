package config

import (
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// KeyLines maps each dotted key set in a TOML document to its line, so
// that validation errors can point at the line that set a bad value.
func KeyLines(data []byte) map[string]int {
	out := map[string]int{}
	for _, kv := range keyValues(data) {
		out[kv.key()] = kv.line
	}
	return out
}

type keyValue struct {
	table, name string
	line        int
	raw         []byte
}

func (kv keyValue) key() string {
	if kv.table == "" {
		return kv.name
	}
	return kv.table + "." + kv.name
}

func keyValues(data []byte) []keyValue {
	var out []keyValue
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0]
			for it := e.Key(); it.Next(); {
				table = append(table, string(it.Node().Data))
			}
		case unstable.KeyValue:
			var key []string
			line := 0
			for it := e.Key(); it.Next(); {
				if line == 0 {
					line = p.Shape(it.Node().Raw).Start.Line
				}
				key = append(key, string(it.Node().Data))
			}
			out = append(out, keyValue{
				table: strings.Join(table, "."), name: strings.Join(key, "."),
				line: line, raw: p.Raw(e.Value().Raw),
			})
		}
	}
	return out
}
