package webhook

// SendReason exports sendReason for tests.
var SendReason = sendReason
