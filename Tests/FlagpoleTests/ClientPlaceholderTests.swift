import Testing
import Flagpole
