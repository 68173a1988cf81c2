package twilio

// Exported for the tests of package twilio_test.
var SMSBody = smsBody

var ParseReply = parseReply
