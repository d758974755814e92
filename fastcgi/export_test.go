package fastcgi

// Internals exposed to the external test package (fuzzing the parsers).
var (
	ParseHeaders  = parseHeaders
	HeaderEnd     = headerEnd
	AppendRequest = appendRequest
)
