// orion sketch summarize|merge|show: DDSketches from the command line.
//
//   summarize  numbers on stdin (one per line, nanoseconds by default) -> a sketch with the
//              kernel's mapping, its summary and its protobuf
//   merge      protobuf sketches (raw or base64 files) -> their merge
//   show       one protobuf sketch -> its summary
#pragma once

namespace orion {

// argv[0] is "sketch".  Exit code 0 on success, 1 on bad input (the message gives the line or
// byte), 2 on usage errors.
int RunSketchCommand(int argc, char** argv);

}  // namespace orion
