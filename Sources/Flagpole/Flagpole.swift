// The Flagpole client library (see FlagpoleClient).
