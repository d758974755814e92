<?php
error_log('hello from stderr');
echo 'ok';
