package cuda

// NewEmulatedDevice returns a Device whose driver and cuBLAS run on the
// host (emu_test.go), for the contract tests in package cuda_test.
func NewEmulatedDevice() (*Device, error) {
	e := newEmu()
	return newDevice(e, e, false)
}
