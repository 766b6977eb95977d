package zendesk

// SetMaxUpload lowers the size Upload refuses to send (MaxUploadSize), so
// that a test of the limit need not read 50 MB.
func SetMaxUpload(c *Client, n int64) { c.maxUpload = n }
