#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

exit(KGraphCommand.run(Array(CommandLine.arguments.dropFirst())))
