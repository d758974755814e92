<?php
// Streams: the first chunk must reach the client before the sleep ends.
while (ob_get_level()) { ob_end_flush(); }
echo "first\n";
flush();
usleep(1500000);
echo "second\n";
