package admin

// RotatedName exposes rotatedName to the tests.
var RotatedName = rotatedName
