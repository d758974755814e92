package libsql

// Internals the external tests fuzz directly.

// SplitSQL exposes the statement lexer: each statement's text, kind and
// parameter count.
func SplitSQL(text string) (texts []string, kinds []int, params []int, err error) {
	sts, err := splitSQL(text)
	for _, s := range sts {
		texts = append(texts, s.text)
		kinds = append(kinds, int(s.kind))
		params = append(params, len(s.params))
	}
	return texts, kinds, params, err
}

// ParseGRPCWeb exposes the gRPC-Web request framing and the protobuf
// decoders of every request message.
func ParseGRPCWeb(body []byte) error {
	msg, err := parseGRPCWebRequest(body)
	if err != nil {
		return err
	}
	decodeLogOffset(msg)
	decodeDescribeRequest(msg)
	p, err := decodeProgramReq(msg)
	if err == nil {
		for _, st := range p.steps {
			for _, v := range append(st.query.pos, st.query.named...) {
				// Every decoded value must encode again.
				if _, err := decodeBincode(appendBincode(nil, v)); err != nil {
					panic("bincode round trip: " + err.Error())
				}
			}
		}
	}
	return err
}

// Bincode round-trips one value through libSQL's bincode encoding.
func Bincode(v any) (any, error) { return decodeBincode(appendBincode(nil, v)) }

// DecodeBincode decodes one bincode value.
func DecodeBincode(b []byte) (any, error) { return decodeBincode(b) }
