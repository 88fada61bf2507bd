import CFuzzerDriver
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

// libFuzzer runs every input through FlagFileFuzz.run; its flags (-max_total_time=600 …) come from
// the command line.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    FlagFileFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
exit(status)
