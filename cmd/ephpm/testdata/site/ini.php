<?php
echo ini_get('memory_limit'), ' ', ini_get('post_max_size'), ' ', ini_get('display_errors'), ' ', get_current_user() === '' ? '' : posix_getpwuid(posix_geteuid())['name'];
