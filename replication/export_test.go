package replication

import "bufio"

// ReadMsg and ParseFrames expose the stream codec to the fuzz tests.
func ReadMsg(r *bufio.Reader) (byte, []byte, error) { return readMsg(r, nil) }

func ParseFrames(recs []byte, want uint64) (uint64, error) {
	var b txBatch
	next, err := parseFrames(&b, recs, want)
	if err == nil {
		_ = b.sorted()
	}
	return next, err
}
