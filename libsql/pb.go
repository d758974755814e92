package libsql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-written protobuf for the few libSQL messages (wal_log and proxy
// packages), so that no generated code or gRPC runtime is needed.

var errPB = errors.New("malformed protobuf")

// pbFields walks the fields of msg, calling fn with each field's number,
// type and raw value (varint value in v, bytes in b).
func pbFields(msg []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return errPB
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(msg)
			v = uint64(x)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return errPB
		}
		msg = msg[n:]
		if err := fn(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

// logOffset is wal_log.LogOffset.
type logOffset struct {
	next      uint64
	flavor    uint64
	hasFlavor bool
}

func decodeLogOffset(msg []byte) (logOffset, error) {
	var o logOffset
	err := pbFields(msg, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			o.next = v
		case num == 2 && typ == protowire.VarintType:
			o.flavor, o.hasFlavor = v, true
		}
		return nil
	})
	return o, err
}

// helloResponse is wal_log.HelloResponse.
type helloResponse struct {
	generationID string
	logID        string
	sessionToken string
	current      uint64
	hasCurrent   bool
}

func (h *helloResponse) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, h.generationID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 0)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, h.logID)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, h.sessionToken)
	if h.hasCurrent {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, h.current)
	}
	return b
}

// marshalFrames is wal_log.Frames holding the records in data (FrameSize each).
func marshalFrames(data []byte) []byte {
	var b []byte
	for len(data) >= FrameSize {
		f := data[:FrameSize]
		data = data[FrameSize:]
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(1)+protowire.SizeBytes(FrameSize)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, f)
	}
	return b
}

// Proxy messages.

type pCond struct {
	kind  int // 1 ok, 2 err, 3 not, 4 and, 5 or, 6 is_autocommit
	step  int64
	conds []pCond
}

type pQuery struct {
	stmt     string
	pos      []any
	names    []string
	named    []any
	skipRows bool
}

type pStep struct {
	cond  *pCond
	query pQuery
}

type programReq struct {
	clientID string
	steps    []pStep
}

// DefaultMaxCondDepth bounds nesting of proxy conditions.
const maxCondDepth = 64

func decodeProgramReq(msg []byte) (*programReq, error) {
	p := &programReq{}
	err := pbFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			p.clientID = string(b)
		case 2: // Program
			return pbFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				s, err := decodeStep(b)
				if err != nil {
					return err
				}
				p.steps = append(p.steps, s)
				return nil
			})
		}
		return nil
	})
	return p, err
}

func decodeStep(msg []byte) (pStep, error) {
	var s pStep
	err := pbFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			c, err := decodeCond(b, 0)
			if err != nil {
				return err
			}
			s.cond = &c
		case 2:
			q, err := decodeQuery(b)
			if err != nil {
				return err
			}
			s.query = q
		}
		return nil
	})
	return s, err
}

func decodeCond(msg []byte, depth int) (pCond, error) {
	var c pCond
	if depth > maxCondDepth {
		return c, errors.New("condition nested too deeply")
	}
	err := pbFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType || num < 1 || num > 6 {
			return nil
		}
		c.kind = int(num)
		switch num {
		case 1, 2: // OkCond / ErrCond {1 step int64}
			return pbFields(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == 1 && typ == protowire.VarintType {
					c.step = int64(v)
				}
				return nil
			})
		case 3, 4, 5: // NotCond{1 cond} / AndCond{1 repeated} / OrCond{1 repeated}
			return pbFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				sub, err := decodeCond(b, depth+1)
				if err != nil {
					return err
				}
				c.conds = append(c.conds, sub)
				return nil
			})
		}
		return nil
	})
	return c, err
}

func decodeQuery(msg []byte) (pQuery, error) {
	var q pQuery
	err := pbFields(msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			q.stmt = string(b)
		case num == 4 && typ == protowire.VarintType:
			q.skipRows = v != 0
		case num == 2 && typ == protowire.BytesType: // Positional{1 repeated Value}
			return pbFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				val, err := decodeValueMsg(b)
				if err != nil {
					return err
				}
				q.pos = append(q.pos, val)
				return nil
			})
		case num == 3 && typ == protowire.BytesType: // Named{1 names, 2 values}
			return pbFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if typ != protowire.BytesType {
					return nil
				}
				switch num {
				case 1:
					q.names = append(q.names, string(b))
				case 2:
					val, err := decodeValueMsg(b)
					if err != nil {
						return err
					}
					q.named = append(q.named, val)
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && len(q.names) != len(q.named) {
		err = errors.New("named parameters: names and values differ in number")
	}
	return q, err
}

// decodeValueMsg reads proxy.Value{1 data: bincode}.
func decodeValueMsg(msg []byte) (any, error) {
	var data []byte
	if err := pbFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if num == 1 && typ == protowire.BytesType {
			data = b
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return decodeBincode(data)
}

// decodeBincode reads libSQL's Value in bincode v1 (fixint, little endian):
// u32 variant 0 Null, 1 Integer i64, 2 Real f64, 3 Text u64 len + UTF-8,
// 4 Blob u64 len + bytes.
func decodeBincode(d []byte) (any, error) {
	if len(d) < 4 {
		return nil, errors.New("bincode value: short")
	}
	tag := binary.LittleEndian.Uint32(d)
	d = d[4:]
	switch tag {
	case 0:
		return nil, nil
	case 1, 2:
		if len(d) < 8 {
			return nil, errors.New("bincode value: short number")
		}
		x := binary.LittleEndian.Uint64(d)
		if tag == 1 {
			return int64(x), nil
		}
		return math.Float64frombits(x), nil
	case 3, 4:
		if len(d) < 8 {
			return nil, errors.New("bincode value: short length")
		}
		n := binary.LittleEndian.Uint64(d)
		d = d[8:]
		if n > uint64(len(d)) {
			return nil, errors.New("bincode value: length beyond data")
		}
		if tag == 3 {
			return string(d[:n]), nil
		}
		return append([]byte{}, d[:n]...), nil
	}
	return nil, fmt.Errorf("bincode value: variant %d", tag)
}

func appendBincode(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return binary.LittleEndian.AppendUint32(b, 0)
	case int64:
		b = binary.LittleEndian.AppendUint32(b, 1)
		return binary.LittleEndian.AppendUint64(b, uint64(x))
	case float64:
		b = binary.LittleEndian.AppendUint32(b, 2)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	case string:
		b = binary.LittleEndian.AppendUint32(b, 3)
		b = binary.LittleEndian.AppendUint64(b, uint64(len(x)))
		return append(b, x...)
	case []byte:
		b = binary.LittleEndian.AppendUint32(b, 4)
		b = binary.LittleEndian.AppendUint64(b, uint64(len(x)))
		return append(b, x...)
	case bool:
		if x {
			return appendBincode(b, int64(1))
		}
		return appendBincode(b, int64(0))
	}
	// time.Time and anything else: as SQLite would give it back, text.
	return appendBincode(b, textOf(v))
}

func decodeDescribeRequest(msg []byte) (clientID, stmt string, err error) {
	err = pbFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			clientID = string(b)
		case 2:
			stmt = string(b)
		}
		return nil
	})
	return clientID, stmt, err
}

// Encoders for the proxy's answers.

func appendMsg(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func marshalPBError(e *sqlError) []byte {
	var b []byte
	// code: SQL_ERROR = 0 is the default and so omitted.
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, e.msg)
	if e.ext != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(int32(e.ext))))
	}
	return b
}

func marshalColumns(b []byte, cols []column) []byte {
	for _, c := range cols {
		var cb []byte
		cb = protowire.AppendTag(cb, 1, protowire.BytesType)
		cb = protowire.AppendString(cb, c.name)
		if c.decltype != "" {
			cb = protowire.AppendTag(cb, 3, protowire.BytesType)
			cb = protowire.AppendString(cb, c.decltype)
		}
		b = appendMsg(b, 1, cb)
	}
	return b
}

func marshalResultRows(r *execResult) []byte {
	b := marshalColumns(nil, r.cols)
	for _, row := range r.rows {
		var rb []byte
		for _, v := range row {
			vb := protowire.AppendTag(nil, 1, protowire.BytesType)
			vb = protowire.AppendBytes(vb, appendBincode(nil, v))
			rb = appendMsg(rb, 1, vb)
		}
		b = appendMsg(b, 2, rb)
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(r.affected))
	if r.hasLastID {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.lastID))
	}
	return b
}

// marshalExecuteResults is proxy.ExecuteResults; every QueryResult gets its
// row_result set (a missing one makes the client panic).
func marshalExecuteResults(res []*execResult, errs []*sqlError, inTx bool, frameNo uint64, hasFrame bool) []byte {
	var b []byte
	for i := range res {
		var q []byte
		if errs[i] != nil {
			q = appendMsg(q, 1, marshalPBError(errs[i]))
		} else {
			r := res[i]
			if r == nil {
				r = &execResult{} // skipped by its condition
			}
			q = appendMsg(q, 2, marshalResultRows(r))
		}
		b = appendMsg(b, 1, q)
	}
	if inTx {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, 2) // TXN
	}
	if hasFrame {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, frameNo)
	}
	return b
}

func marshalDescribeResult(d *description, e *sqlError) []byte {
	if e != nil {
		return appendMsg(nil, 1, marshalPBError(e))
	}
	db := marshalColumns(nil, d.cols)
	for _, p := range d.stmt.params {
		db = protowire.AppendTag(db, 2, protowire.BytesType)
		db = protowire.AppendString(db, p)
	}
	db = protowire.AppendTag(db, 3, protowire.VarintType)
	db = protowire.AppendVarint(db, uint64(len(d.stmt.params)))
	return appendMsg(nil, 2, db)
}
