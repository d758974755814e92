package libsql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// gRPC status codes used here.
const (
	grpcOK                 = 0
	grpcInvalidArgument    = 3
	grpcNotFound           = 5
	grpcFailedPrecondition = 9
	grpcOutOfRange         = 11
	grpcUnimplemented      = 12
	grpcInternal           = 13
	grpcUnavailable        = 14
	grpcUnauthenticated    = 16
)

// grpcStatus is an RPC failure, sent as a trailer-only gRPC-Web response.
type grpcStatus struct {
	code int
	msg  string
}

func (e *grpcStatus) Error() string { return fmt.Sprintf("grpc status %d: %s", e.code, e.msg) }

// parseGRPCWebRequest returns the message of a unary gRPC-Web request body:
// one uncompressed data frame (0x00, u32 BE length, protobuf). An empty
// body is an empty message.
func parseGRPCWebRequest(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if len(body) < 5 {
		return nil, errors.New("grpc-web: short frame header")
	}
	flag := body[0]
	n := binary.BigEndian.Uint32(body[1:5])
	if flag&0x80 != 0 {
		return nil, errors.New("grpc-web: trailer frame in a request")
	}
	if flag&0x01 != 0 {
		return nil, errors.New("grpc-web: compressed messages are not supported")
	}
	if uint64(n) > uint64(len(body)-5) {
		return nil, errors.New("grpc-web: frame longer than body")
	}
	if rest := body[5+n:]; len(rest) != 0 {
		return nil, errors.New("grpc-web: more than one message in a unary request")
	}
	return body[5 : 5+n], nil
}

// appendDataFrame appends one gRPC-Web data frame.
func appendDataFrame(b, msg []byte) []byte {
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// appendTrailer appends the trailer frame carrying the status.
func appendTrailer(b []byte, code int, msg string) []byte {
	t := "grpc-status:" + strconv.Itoa(code) + "\r\n"
	if msg != "" {
		t += "grpc-message:" + percentEncode(msg) + "\r\n"
	}
	b = append(b, 0x80)
	b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
	return append(b, t...)
}

// percentEncode is gRPC's grpc-message encoding.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}

// writeGRPCWeb answers with HTTP 200: the messages, then the trailer.
func writeGRPCWeb(w http.ResponseWriter, msgs [][]byte, st *grpcStatus) {
	var b []byte
	for _, m := range msgs {
		b = appendDataFrame(b, m)
	}
	if st == nil {
		b = appendTrailer(b, grpcOK, "")
	} else {
		b = appendTrailer(b, st.code, st.msg)
	}
	w.Header().Set("Content-Type", "application/grpc-web+proto")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
