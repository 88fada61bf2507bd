// The control side: doctor, sync, rollouts.
